"""The client commands of `reelscribe`: they talk to a running server with a token.

Each is a `click` command defined with `@command()` below, which also records
it in `COMMANDS`; `cli.main` adds every one of them to the `reelscribe` group.
To add a command, define it here with `@command()` and `@_address_option`, and
reach the server through `_run` (which turns failed calls into CLI errors).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click
from reelscribe_client import ReelscribeClient, ReelscribeError, v1

from cli.progress import StageBars

#: Every client command, in the order defined here.
COMMANDS: list[click.Command] = []

_FORMATS = {
    "txt": v1.ExportFormat.TXT,
    "json": v1.ExportFormat.JSON,
    "srt": v1.ExportFormat.SRT,
    "vtt": v1.ExportFormat.VTT,
}


def command(**attrs: Any) -> Callable[[Callable[..., None]], click.Command]:
    """`click.command(**attrs)` that also records the command in `COMMANDS`."""

    def decorate(fn: Callable[..., None]) -> click.Command:
        cmd = click.command(**attrs)(fn)
        COMMANDS.append(cmd)
        return cmd

    return decorate


_address_option = click.option(
    "--address", envvar="REELSCRIBE_SERVER_ADDRESS", default="127.0.0.1:50051", show_default=True
)


def _token() -> str:
    tok = os.environ.get("REELSCRIBE_TOKEN")
    if not tok:
        raise click.UsageError("set REELSCRIBE_TOKEN (mint one with `reelscribe token --user U`)")
    return tok


def _run(address: str, token: str, work: Callable[[ReelscribeClient], Awaitable[None]]) -> None:
    """Run `work` with a client; failed calls become clean CLI errors."""

    async def _main() -> None:
        async with ReelscribeClient(address, token) as client:
            await work(client)

    try:
        asyncio.run(_main())
    except ReelscribeError as exc:
        raise click.ClickException(str(exc)) from exc


async def _follow(client: ReelscribeClient, name: str) -> v1.Job:
    bars = StageBars()
    final: v1.Job | None = None
    try:
        async for event in client.watch(name):
            bars.show(event)
            final = event.job or final
    finally:
        bars.close()
    assert final is not None
    return final


def _check_succeeded(job: v1.Job) -> None:
    if job.state != v1.JobState.SUCCEEDED:
        reason = job.error.reason if job.error else ""
        message = job.error.message if job.error else ""
        raise click.ClickException(f"job ended {job.state.name}: {reason} {message}".strip())


async def _submit(
    client: ReelscribeClient, path: Path, language: str, follow: bool, show_transcript: bool
) -> None:
    media = await client.upload(path)
    job = await client.create_job(media=media.name, options=v1.JobOptions(language=language))
    click.echo(job.name)
    if follow or show_transcript:
        final = await _follow(client, job.name)
        _check_succeeded(final)
    if show_transcript:
        click.echo("\n--- transcript ---")
        click.echo(await client.export(job.name, v1.ExportFormat.TXT), nl=False)
        summary = await client.summary(job.name, v1.SummaryFormat.SHORT)
        click.echo(f"\n--- summary ({summary.provider}) ---")
        click.echo(summary.text or "(nothing was said)")
        for c in await client.chapters(job.name):
            click.echo(f"chapter {_span(c.start_seconds, c.end_seconds)}  {c.title}")


def submit_and_show(address: str, tok: str, path: Path) -> None:
    """Upload `path`, follow its job with progress bars, then print its results."""
    _run(address, tok, lambda c: _submit(c, path, "", True, True))


@command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--watch", "follow", is_flag=True, help="follow progress until the job ends")
@click.option("--language", default="", help="spoken language (empty: detect)")
@_address_option
def submit(file: Path, follow: bool, language: str, address: str) -> None:
    """Upload FILE and create a transcription job; prints the job name."""
    _run(address, _token(), lambda c: _submit(c, file, language, follow, False))


@command()
@click.argument("job")
@_address_option
def watch(job: str, address: str) -> None:
    """Stream JOB's progress until it ends."""

    async def _work(client: ReelscribeClient) -> None:
        await _follow(client, job)

    _run(address, _token(), _work)


@command()
@_address_option
def jobs(address: str) -> None:
    """List your jobs, newest first."""

    async def _work(client: ReelscribeClient) -> None:
        async for job in client.list_jobs():
            created = job.create_time.strftime("%Y-%m-%d %H:%M:%S") if job.create_time else ""
            reason = job.error.reason if job.error else ""
            click.echo(
                f"{job.name}  {job.state.name:<9}  {job.progress * 100:5.1f}%  {created}  {reason}"
            )

    _run(address, _token(), _work)


@command()
@click.argument("job")
@click.option("--format", "fmt", type=click.Choice(sorted(_FORMATS)), default="txt")
@_address_option
def transcript(job: str, fmt: str, address: str) -> None:
    """Print JOB's transcript."""

    async def _work(client: ReelscribeClient) -> None:
        sys.stdout.write(await client.export(job, _FORMATS[fmt]))

    _run(address, _token(), _work)


_EN_DASH = "\u2013"  # an en dash between the start and end of a hit


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


@command()
@click.argument("query")
@click.option("--mode", type=click.Choice(["hybrid", "keyword", "semantic"]), default="hybrid")
@click.option("--limit", type=int, default=10, show_default=True)
@_address_option
def search(query: str, mode: str, limit: int, address: str) -> None:
    """Search your whole library; prints job, time range (mm:ss) and snippet per hit."""

    async def _work(client: ReelscribeClient) -> None:
        reply = await client.search(query, mode=v1.SearchMode[mode.upper()], page_size=limit)
        for hit in reply.hits:
            span = f"{_clock(hit.start_seconds)}{_EN_DASH}{_clock(hit.end_seconds)}"
            click.echo(f"{hit.job}  {span}  {hit.snippet}")

    _run(address, _token(), _work)


def _span(start_s: float, end_s: float) -> str:
    return f"{_clock(start_s)}{_EN_DASH}{_clock(end_s)}"


@command()
@click.argument("job")
@click.option(
    "--format", "fmt", type=click.Choice(["short", "bullets", "detailed"]), default="short"
)
@_address_option
def summary(job: str, fmt: str, address: str) -> None:
    """Print JOB's summary and chapters."""

    async def _work(client: ReelscribeClient) -> None:
        reply = await client.summary(job, v1.SummaryFormat[fmt.upper()])
        if reply.bullets:
            for bullet in reply.bullets:
                click.echo(f"- {bullet}")
        else:
            click.echo(reply.text or "(nothing was said)")
        chapters = await client.chapters(job)
        if chapters:
            click.echo("\nChapters:")
            for c in chapters:
                click.echo(f"  {_span(c.start_seconds, c.end_seconds)}  {c.title}")

    _run(address, _token(), _work)


@command()
@click.argument("job")
@click.option("--download", type=click.Path(file_okay=False, path_type=Path), default=None)
@_address_option
def highlights(job: str, download: Path | None, address: str) -> None:
    """Print JOB's highlights; --download DIR saves their rendered clips."""

    async def _work(client: ReelscribeClient) -> None:
        for h in await client.highlights(job):
            click.echo(f"{_span(h.start_seconds, h.end_seconds)}  {h.score:.2f}  {h.text}")
            if download is not None and h.clip_size_bytes:
                ext = ".mp4" if h.clip_mime_type.startswith("video/") else ".m4a"
                dest = download / (h.name.rsplit("/", 1)[-1] + ext)
                await client.download_clip(h.name, dest)
                click.echo(f"  saved {dest}")

    if download is not None:
        download.mkdir(parents=True, exist_ok=True)
    _run(address, _token(), _work)


@command()
@click.argument("question")
@click.option("--job", default="", help="Ask about one job (default: the whole library).")
@_address_option
def ask(question: str, job: str, address: str) -> None:
    """Answer QUESTION from your library, citing the moments it used."""

    async def _work(client: ReelscribeClient) -> None:
        reply = await client.ask(question, job=job)
        click.echo(reply.answer)
        for c in reply.citations:
            click.echo(f"  {c.job}  {_span(c.start_seconds, c.end_seconds)}  {c.text}")

    _run(address, _token(), _work)


@command()
@click.option("--since", default="", help="First UTC day, YYYY-MM-DD (default: 30 days ago).")
@_address_option
def costs(since: str, address: str) -> None:
    """Print your estimated processing cost per day."""

    async def _work(client: ReelscribeClient) -> None:
        report = await client.cost_report(start_date=since)
        for d in report.days:
            click.echo(
                f"{d.date}  {d.audio_minutes:8.1f} audio min  {d.cpu_seconds:8.1f} CPU s"
                f"  {d.provider_tokens:8d} tokens  ${d.cost_usd:.4f}"
            )
        click.echo(f"total ${report.total_cost_usd:.4f}")

    _run(address, _token(), _work)
