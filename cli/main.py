"""`reelscribe`: run the stack, check it, mint tokens; and talk to a server.

The commands that run and check the stack are here; the client commands, which
talk to a running server, are in `cli.client_commands` and added to the group below.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from importlib import resources
from pathlib import Path

import click

from cli import client_commands
from reelscribe import logs
from reelscribe.auth import mint_token
from reelscribe.config import Settings, get_settings


def sample_path() -> Path:
    """The bundled spoken-lecture sample."""
    return Path(str(resources.files("reelscribe").joinpath("samples/lecture.ogg")))


@click.group()
def main() -> None:
    """Reelscribe: long recordings in, transcripts out, progress live."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


# -- running the system --------------------------------------------------------


@main.command()
@click.option(
    "--s3",
    is_flag=True,
    help="keep blobs in S3 (an embedded SeaweedFS unless REELSCRIBE_S3_ENDPOINT_URL is set)",
)
def up(s3: bool) -> None:
    """Embedded Postgres + Valkey (unless URLs are set), migrations, server and worker."""
    from cli.stack import running_stack

    logs.configure()
    settings = get_settings()
    if s3:
        settings = settings.model_copy(update={"blob_backend": "s3"})

    _stop_on_signals()
    try:
        with running_stack(settings) as stack:
            try:
                click.echo(
                    f"reelscribe is up on {stack.address} (data in {settings.data_dir}); "
                    "Ctrl-C stops it"
                )
                _echo_console(settings, stack.web_address, "local")
                _echo_metrics(settings)
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                click.echo("stopping (calls in flight and running stages get their grace)")
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("stopped")


def _stop_on_signals() -> None:
    """SIGTERM (service managers) and SIGHUP (a closed terminal) stop the stack the
    same way Ctrl-C does: each child gets one SIGTERM and its grace period."""

    def _interrupt(*_: object) -> None:
        # Once: the children are being stopped gracefully, within their grace.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _interrupt)


def console_url(web_address: str, token: str) -> str:
    """The web console's address, signed in with `token`.

    The token rides in the URL fragment, which browsers never send to a server
    (nor put in a Referer); the console reads it and keeps it in the page.
    """
    host, _, port = web_address.rpartition(":")
    if host.strip("[]") in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/#token={token}"


def _echo_console(settings: Settings, web_address: str, user: str) -> None:
    """Print the console's address with a development token for `user` (if it listens)."""
    if not web_address:
        return
    token = mint_token(
        settings.resolved_jwt_secret(),
        user,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    click.echo(f"web console (signed in as {user!r}): {console_url(web_address, token)}")


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
@click.option(
    "--stay",
    is_flag=True,
    help="keep the stack (and the web console) up after the job, until Ctrl-C",
)
def demo(file: Path | None, stay: bool) -> None:
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
        # The demo's user: open it while the job runs to watch it in the browser.
        _echo_console(settings, stack.web_address, "demo")
        client_commands.submit_and_show(stack.address, token, path)
        if stay:
            _stop_on_signals()
            click.echo("the stack stays up (the console above shows this job); Ctrl-C stops it")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                click.echo("stopping")
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
    """Run pipeline workers (Dramatiq) against REELSCRIBE_REDIS_URL.

    The worker group runs under a supervisor that restarts it if one of its
    processes dies; SIGTERM is passed on once, so running stages finish.
    """
    from cli.stack import supervised, worker_command

    settings = get_settings()
    cmd = supervised(
        worker_command(
            processes or settings.worker_processes,
            threads or settings.worker_threads,
            settings.worker_shutdown_timeout_s,
        )
    )
    # The supervisor becomes this process, so SIGTERM reaches it directly.
    os.execv(cmd[0], cmd)


@main.command()
def migrate() -> None:
    """Apply database migrations to REELSCRIBE_DATABASE_URL (and, with S3, create the bucket)."""
    from cli.stack import migrate as run_migrate

    settings = get_settings()
    if not settings.database_url:
        raise click.UsageError("set REELSCRIBE_DATABASE_URL")
    applied = run_migrate(settings.database_url)
    click.echo(f"applied {applied}" if applied else "up to date")
    if settings.blob_backend == "s3":
        from reelscribe.blobs import open_blob_store
        from reelscribe.s3store import S3BlobStore

        store = open_blob_store(settings)
        assert isinstance(store, S3BlobStore)
        store.ensure_bucket()
        click.echo(f"bucket {settings.s3_bucket!r} ready")


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
    if not 0 < ttl_hours * 3600 <= settings.jwt_max_lifetime_s:
        raise click.BadParameter(
            f"between 0 and {settings.jwt_max_lifetime_s / 3600:g} hours "
            "(REELSCRIBE_JWT_MAX_LIFETIME_S); servers refuse longer-lived tokens",
            param_hint="--ttl-hours",
        )
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


# -- client commands: defined in cli/client_commands.py ----------------------------

for _command in client_commands.COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":
    main()
