"""`reelscribe`: run the stack, mint tokens, and talk to a server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from importlib import resources
from pathlib import Path

import click
import grpc

from reelscribe import logs
from reelscribe.auth import mint_token
from reelscribe.config import get_settings
from reelscribe.v1 import job_pb2, transcript_service_pb2

_FORMATS = {
    "txt": transcript_service_pb2.EXPORT_FORMAT_TXT,
    "json": transcript_service_pb2.EXPORT_FORMAT_JSON,
    "srt": transcript_service_pb2.EXPORT_FORMAT_SRT,
    "vtt": transcript_service_pb2.EXPORT_FORMAT_VTT,
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
    from reelscribe.cli.stack import running_stack

    logs.configure()
    settings = get_settings()

    def _interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM (service managers) stops the stack the same way Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    with running_stack(settings) as address:
        click.echo(f"reelscribe is up on {address} (data in {settings.data_dir}); Ctrl-C stops it")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    click.echo("stopped")


@main.command()
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def demo(file: Path | None) -> None:
    """Start the stack, transcribe FILE (default: a bundled lecture) with live progress."""
    from reelscribe.cli.stack import running_stack

    settings = get_settings()
    path = file or sample_path()
    with running_stack(settings, quiet=True) as address:
        token = mint_token(settings.resolved_jwt_secret(), "demo")
        _submit_and_show(address, token, path)
    click.echo("stack stopped; logs are in " + str(settings.data_dir / "logs"))


@main.command()
def server() -> None:
    """Run the gRPC server (needs REELSCRIBE_DATABASE_URL and REELSCRIBE_REDIS_URL)."""
    from server.app import serve

    logs.configure()
    asyncio.run(serve(get_settings()))


@main.command()
@click.option("--processes", type=int, default=None, help="worker processes")
@click.option("--threads", type=int, default=None, help="threads per process")
def worker(processes: int | None, threads: int | None) -> None:
    """Run pipeline workers (Dramatiq) against REELSCRIBE_REDIS_URL."""
    from reelscribe.cli.stack import worker_command

    settings = get_settings()
    cmd = worker_command(processes or settings.worker_processes, threads or settings.worker_threads)
    os.execv(cmd[0], cmd)


@main.command()
def migrate() -> None:
    """Apply database migrations to REELSCRIBE_DATABASE_URL."""
    from reelscribe.cli.stack import migrate as run_migrate

    settings = get_settings()
    if not settings.database_url:
        raise click.UsageError("set REELSCRIBE_DATABASE_URL")
    applied = run_migrate(settings.database_url)
    click.echo(f"applied {applied}" if applied else "up to date")


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
            role=role,  # type: ignore[arg-type]
            plan=plan,
            ttl_s=ttl_hours * 3600,
        )
    )


# -- client commands ------------------------------------------------------------------

_address_option = click.option(
    "--address", envvar="REELSCRIBE_SERVER_ADDRESS", default="127.0.0.1:50051", show_default=True
)


def _client(address: str):  # type: ignore[no-untyped-def]
    from reelscribe.cli.client import Client

    tok = os.environ.get("REELSCRIBE_TOKEN")
    if not tok:
        raise click.UsageError("set REELSCRIBE_TOKEN (mint one with `reelscribe token --user U`)")
    return Client(address, tok)


def _print_event(event: job_pb2.JobEvent) -> None:
    if event.kind == job_pb2.JOB_EVENT_KIND_HEARTBEAT:
        return
    job = event.job
    stage = job_pb2.Stage.Name(job.stage).removeprefix("STAGE_").lower()
    state = job_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_").lower()
    bar_width = 24
    filled = int(job.progress * bar_width)
    bar = "#" * filled + "." * (bar_width - filled)
    seq = f"{event.seq:>4}" if event.seq else "   -"
    click.echo(f"{seq} [{bar}] {job.progress * 100:5.1f}%  {state:<9} {stage:<14} {event.message}")


def _fail_on_rpc_error(exc: grpc.RpcError) -> None:
    raise click.ClickException(f"{exc.code().name}: {exc.details()}")


def _submit_and_show(address: str, tok: str, path: Path) -> None:
    from reelscribe.cli.client import Client

    client = Client(address, tok)
    try:
        media = client.upload(path)
        job = client.create_job(media.name)
        click.echo(f"{job.name}  ({path.name}, {media.size_bytes} bytes)")
        final = client.watch(job.name, _print_event)
        if final.state != job_pb2.JOB_STATE_SUCCEEDED:
            raise click.ClickException(
                f"job ended {job_pb2.JobState.Name(final.state)}: "
                f"{final.error.reason} {final.error.message}"
            )
        click.echo("\n--- transcript ---")
        click.echo(client.export(job.name, transcript_service_pb2.EXPORT_FORMAT_TXT), nl=False)
    except grpc.RpcError as exc:
        _fail_on_rpc_error(exc)
    finally:
        client.close()


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--watch", "follow", is_flag=True, help="follow progress until the job ends")
@click.option("--language", default="", help="spoken language (empty: detect)")
@_address_option
def submit(file: Path, follow: bool, language: str, address: str) -> None:
    """Upload FILE and create a transcription job; prints the job name."""
    client = _client(address)
    try:
        media = client.upload(file)
        job = client.create_job(media.name, language=language)
        click.echo(job.name)
        if follow:
            final = client.watch(job.name, _print_event)
            if final.state != job_pb2.JOB_STATE_SUCCEEDED:
                raise click.ClickException(
                    f"{job_pb2.JobState.Name(final.state)}: "
                    f"{final.error.reason} {final.error.message}"
                )
    except grpc.RpcError as exc:
        _fail_on_rpc_error(exc)
    finally:
        client.close()


@main.command()
@click.argument("job")
@_address_option
def watch(job: str, address: str) -> None:
    """Stream JOB's progress until it ends."""
    client = _client(address)
    try:
        client.watch(job, _print_event)
    except grpc.RpcError as exc:
        _fail_on_rpc_error(exc)
    finally:
        client.close()


@main.command()
@_address_option
def jobs(address: str) -> None:
    """List your jobs, newest first."""
    client = _client(address)
    try:
        for job in client.list_jobs():
            state = job_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_")
            created = job.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
            click.echo(
                f"{job.name}  {state:<9}  {job.progress * 100:5.1f}%  {created}  {job.error.reason}"
            )
    except grpc.RpcError as exc:
        _fail_on_rpc_error(exc)
    finally:
        client.close()


@main.command()
@click.argument("job")
@click.option("--format", "fmt", type=click.Choice(sorted(_FORMATS)), default="txt")
@_address_option
def transcript(job: str, fmt: str, address: str) -> None:
    """Print JOB's transcript."""
    client = _client(address)
    try:
        sys.stdout.write(client.export(job, _FORMATS[fmt]))
    except grpc.RpcError as exc:
        _fail_on_rpc_error(exc)
    finally:
        client.close()


if __name__ == "__main__":
    main()
