"""`reelscribe`: run the stack, mint tokens, and talk to a server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

import click
from reelscribe_client import ReelscribeClient, ReelscribeError, v1

from cli.progress import StageBars
from reelscribe import logs
from reelscribe.auth import mint_token
from reelscribe.config import Settings, get_settings

_FORMATS = {
    "txt": v1.ExportFormat.TXT,
    "json": v1.ExportFormat.JSON,
    "srt": v1.ExportFormat.SRT,
    "vtt": v1.ExportFormat.VTT,
}


def sample_path() -> Path:
    """The bundled spoken-lecture sample."""
    return Path(str(resources.files("reelscribe").joinpath("samples/lecture.ogg")))


@click.group()
def main() -> None:
    """Reelscribe: long recordings in, transcripts out, progress live."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


# -- running the system --------------------------------------------------------


@main.command()
def up() -> None:
    """Embedded Postgres + Valkey (unless URLs are set), migrations, server and worker."""
    from cli.stack import running_stack

    logs.configure()
    settings = get_settings()

    def _interrupt(*_: object) -> None:
        # Once: the children are being stopped gracefully, within their grace.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    # SIGTERM (service managers) and SIGHUP (a closed terminal) stop the stack the
    # same way Ctrl-C does: each child gets one SIGTERM and its grace period.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    with running_stack(settings) as stack:
        click.echo(
            f"reelscribe is up on {stack.address} (data in {settings.data_dir}); Ctrl-C stops it"
        )
        _echo_metrics(settings)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("stopping (calls in flight and running stages get their grace)")
    click.echo("stopped")


def _echo_metrics(settings: Settings) -> None:
    from reelscribe.metrics import endpoint_host

    host = endpoint_host(settings.metrics_host, settings.listen_address)
    for what, port in (
        ("server", settings.metrics_port),
        ("workers", settings.worker_metrics_port),
    ):
        if port:
            click.echo(f"metrics ({what}): http://{host}:{port}/metrics")


@main.command()
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def demo(file: Path | None) -> None:
    """Start the stack, transcribe FILE (default: a bundled lecture) with live progress."""
    from cli.stack import running_stack

    settings = get_settings()
    path = file or sample_path()
    with running_stack(settings, quiet=True) as stack:
        token = mint_token(
            settings.resolved_jwt_secret(),
            "demo",
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        _submit_and_show(stack.address, token, path)
    click.echo("stack stopped; logs are in " + str(settings.data_dir / "logs"))


@main.command()
def server() -> None:
    """Run the gRPC server (needs REELSCRIBE_DATABASE_URL and REELSCRIBE_REDIS_URL).

    SIGTERM or Ctrl-C: health turns NOT_SERVING, new calls are refused, streams
    end telling clients to resume, calls in flight get `shutdown_grace_s`; exit 0.
    """
    from server.process import main as run_server

    run_server()


@main.command()
@click.option("--processes", type=int, default=None, help="worker processes")
@click.option("--threads", type=int, default=None, help="threads per process")
def worker(processes: int | None, threads: int | None) -> None:
    """Run pipeline workers (Dramatiq) against REELSCRIBE_REDIS_URL."""
    from cli.stack import worker_command

    settings = get_settings()
    cmd = worker_command(
        processes or settings.worker_processes,
        threads or settings.worker_threads,
        settings.worker_shutdown_timeout_s,
    )
    # Dramatiq becomes this process, so SIGTERM reaches its main process
    # directly: it stops taking messages and lets running stages finish.
    os.execv(cmd[0], cmd)


@main.command()
def migrate() -> None:
    """Apply database migrations to REELSCRIBE_DATABASE_URL."""
    from cli.stack import migrate as run_migrate

    settings = get_settings()
    if not settings.database_url:
        raise click.UsageError("set REELSCRIBE_DATABASE_URL")
    applied = run_migrate(settings.database_url)
    click.echo(f"applied {applied}" if applied else "up to date")


@main.command()
@click.option("--timeout", type=float, default=5.0, show_default=True, help="per connection, s")
@click.option("--no-services", is_flag=True, help="skip the Postgres and Redis checks")
def doctor(timeout: float, no_services: bool) -> None:
    """Check configuration, Postgres, Redis, models, disk and ffmpeg; exit 1 on any FAIL."""
    from cli.doctor import run as run_doctor

    sys.exit(run_doctor(timeout_s=timeout, services=not no_services))


@main.command()
@click.option("--user", required=True, help="subject (user id) of the token")
@click.option("--role", type=click.Choice(["user", "admin"]), default="user")
@click.option("--plan", default="free")
@click.option("--ttl-hours", type=float, default=24.0)
def token(user: str, role: str, plan: str, ttl_hours: float) -> None:
    """Mint a development JWT signed with the configured (or data-dir) secret."""
    settings = get_settings()
    click.echo(
        mint_token(
            settings.resolved_jwt_secret(),
            user,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            role=role,  # type: ignore[arg-type]
            plan=plan,
            ttl_s=ttl_hours * 3600,
        )
    )


# -- client commands ------------------------------------------------------------------

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


def _submit_and_show(address: str, tok: str, path: Path) -> None:
    _run(address, tok, lambda c: _submit(c, path, "", True, True))


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--watch", "follow", is_flag=True, help="follow progress until the job ends")
@click.option("--language", default="", help="spoken language (empty: detect)")
@_address_option
def submit(file: Path, follow: bool, language: str, address: str) -> None:
    """Upload FILE and create a transcription job; prints the job name."""
    _run(address, _token(), lambda c: _submit(c, file, language, follow, False))


@main.command()
@click.argument("job")
@_address_option
def watch(job: str, address: str) -> None:
    """Stream JOB's progress until it ends."""

    async def _work(client: ReelscribeClient) -> None:
        await _follow(client, job)

    _run(address, _token(), _work)


@main.command()
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


@main.command()
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


@main.command()
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


@main.command()
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


@main.command()
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


@main.command()
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


@main.command()
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


if __name__ == "__main__":
    main()
