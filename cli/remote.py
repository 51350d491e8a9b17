"""What every client command shares: the token, the address, a client, following a job.

A client command is a `click` command defined with `@command()` (which also
records it in `COMMANDS`) and `@address_option`; it reaches the server through
`run`, which turns failed calls into CLI errors. Commands that follow a job to
its end (`submit --watch`, `watch`) exit with `exit_code_for` its final state.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import click
from reelscribe_client import ReelscribeClient, ReelscribeError, v1

from cli.progress import StageBars

#: Every client command, in the order its module defines it.
COMMANDS: list[click.Command] = []

#: Exit status of a followed job that ended FAILED (1 is any other error, 2 a usage error).
EXIT_FAILED = 3
#: Exit status of a followed job that ended CANCELLED.
EXIT_CANCELLED = 4

_EN_DASH = "\u2013"  # between the start and end of a time range


def command(**attrs: Any) -> Callable[[Callable[..., None]], click.Command]:
    """`click.command(**attrs)` that also records the command in `COMMANDS`."""

    def decorate(fn: Callable[..., None]) -> click.Command:
        cmd = click.command(**attrs)(fn)
        COMMANDS.append(cmd)
        return cmd

    return decorate


address_option = click.option(
    "--address",
    envvar="REELSCRIBE_SERVER_ADDRESS",
    default="127.0.0.1:50051",
    show_default=True,
    help="server address (REELSCRIBE_SERVER_ADDRESS)",
)


def token() -> str:
    """The caller's token, from REELSCRIBE_TOKEN."""
    tok = os.environ.get("REELSCRIBE_TOKEN")
    if not tok:
        raise click.UsageError("set REELSCRIBE_TOKEN (mint one with `reelscribe token --user U`)")
    return tok


def run(address: str, tok: str, work: Callable[[ReelscribeClient], Awaitable[None]]) -> None:
    """Run `work` with a client; failed calls become clean CLI errors (exit 1)."""

    async def _main() -> None:
        async with ReelscribeClient(address, tok) as client:
            await work(client)

    try:
        asyncio.run(_main())
    except ReelscribeError as exc:
        raise click.ClickException(describe_error(exc)) from exc


def describe_error(exc: ReelscribeError) -> str:
    """A failed call for a person: code, reason, message, and each field violation."""
    reason = f" ({exc.reason})" if exc.reason else ""
    lines = [f"{exc.code.name}{reason}: {exc.message}"]
    lines += [
        f"  {field}: {why}" for field, why in exc.field_violations.items() if why not in exc.message
    ]
    return "\n".join(lines)


class JobEnded(click.ClickException):
    """A followed job ended without succeeding; its exit status says how."""

    exit_code = EXIT_FAILED

    def __init__(self, job: v1.Job) -> None:
        error = job.error
        why = f"{error.reason}: {error.message}" if error and error.reason else ""
        super().__init__(f"{job.name} ended {job.state.name}" + (f" ({why})" if why else ""))


class JobCancelled(JobEnded):
    """A followed job ended CANCELLED."""

    exit_code = EXIT_CANCELLED


def check_succeeded(job: v1.Job) -> None:
    """Raise `JobEnded` (exit 3 for FAILED, 4 for CANCELLED) unless `job` succeeded."""
    if job.state == v1.JobState.CANCELLED:
        raise JobCancelled(job)
    if job.state != v1.JobState.SUCCEEDED:
        raise JobEnded(job)


async def follow(client: ReelscribeClient, name: str) -> v1.Job:
    """Show a job's progress bars until it ends; returns the job as it ended."""
    bars = StageBars()
    final: v1.Job | None = None
    try:
        async for event in client.watch(name):
            bars.show(event)
            final = event.job or final
    finally:
        bars.close()
    if final is None:
        raise click.ClickException(f"the watch of {name} ended without events")
    return final


def clock(seconds: float) -> str:
    """`mm:ss` of a time in seconds."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def span(start_s: float, end_s: float) -> str:
    """`mm:ss` to `mm:ss` of a time range, joined by an en dash."""
    return f"{clock(start_s)}{_EN_DASH}{clock(end_s)}"


def nothing(message: str) -> None:
    """Say there is nothing to show (on stderr, so piped output stays empty)."""
    click.echo(message, err=True)
