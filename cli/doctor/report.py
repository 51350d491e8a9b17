"""The doctor's report: every check in order, rendered as a table, and the exit code."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

import click

from cli.doctor.check import DEFAULT_TIMEOUT_S, Check, Status
from cli.doctor.configuration import check_analysis, check_config, check_jwt
from cli.doctor.host import (
    check_caption_font,
    check_disk,
    check_embedding_model,
    check_ffmpeg,
    check_whisper_model,
)
from cli.doctor.memory import check_memory
from cli.doctor.services import (
    check_blob_store,
    check_broker,
    check_migrations,
    check_pgvector,
    check_postgres,
    check_redis,
    check_workers,
)
from reelscribe.config import Settings


async def run_checks(
    settings: Settings, *, timeout_s: float = DEFAULT_TIMEOUT_S, services: bool = True
) -> list[Check]:
    """Every check after `config`, for `settings`."""
    checks = [check_jwt(settings), check_analysis(settings)]
    if services:
        postgres = await check_postgres(settings, timeout_s)
        checks.append(postgres)
        if postgres.status is not Status.FAIL:
            checks.append(await check_migrations(settings, timeout_s))
            checks.append(await check_pgvector(settings, timeout_s))
        redis = await check_redis(settings, timeout_s)
        checks.append(redis)
        if redis.status is not Status.FAIL:
            checks.append(await check_broker(settings, timeout_s))
            if settings.redis_url:  # embedded mode: nothing runs until `reelscribe up`
                checks.append(await check_workers(settings, timeout_s))
        checks.append(await check_blob_store(settings, timeout_s))
    checks += [
        check_whisper_model(settings),
        check_embedding_model(settings),
        check_disk(settings),
        check_ffmpeg(),
        check_caption_font(),
        check_memory(),
    ]
    return checks


def diagnose(*, timeout_s: float = DEFAULT_TIMEOUT_S, services: bool = True) -> list[Check]:
    """Every check, with settings from the environment."""
    config, settings = check_config()
    if settings is None:
        return [config]
    return [config, *asyncio.run(run_checks(settings, timeout_s=timeout_s, services=services))]


_COLOURS = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "red"}


def render(checks: Sequence[Check], *, colour: bool = False) -> str:
    """The report: one line per check, a `fix:` line under each problem, a summary."""
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for check in checks:
        status = f"{check.status.value:<4}"
        if colour:
            status = click.style(status, fg=_COLOURS[check.status], bold=True)
        lines.append(f"{status}  {check.name:<{width}}  {check.detail}")
        if check.fix:
            lines.append(f"{'':4}  {'':<{width}}  fix: {check.fix}")
    counts = {s: sum(c.status is s for c in checks) for s in Status}
    lines.append(
        f"\n{counts[Status.OK]} ok, {counts[Status.WARN]} warning(s), "
        f"{counts[Status.FAIL]} failure(s)"
    )
    return "\n".join(lines)


def run(*, timeout_s: float = DEFAULT_TIMEOUT_S, services: bool = True) -> int:
    """Print the report; returns the exit code (1 if anything FAILed)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    checks = diagnose(timeout_s=timeout_s, services=services)
    click.echo(render(checks, colour=sys.stdout.isatty()))
    return 1 if any(c.status is Status.FAIL for c in checks) else 0
