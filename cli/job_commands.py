"""Client commands about jobs: submit, watch, job, jobs, cancel, delete, deliveries."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import click
from reelscribe_client import ReelscribeClient, v1

from cli.model_commands import check_choice
from cli.remote import (
    address_option,
    check_succeeded,
    command,
    follow,
    nothing,
    run,
    span,
    token,
)

#: `--stage` values: the stages a job may run after transcription.
STAGES = {
    "analyze": v1.Stage.ANALYZE,
    "highlights": v1.Stage.HIGHLIGHTS,
    "render-clips": v1.Stage.RENDER_CLIPS,
    "translate": v1.Stage.TRANSLATE,
    "romanize": v1.Stage.ROMANIZE,
    "diarize": v1.Stage.DIARIZE,
}
_URL = re.compile(r"^https?://", re.IGNORECASE)
_STATES = {s.name.lower(): s for s in v1.JobState if s != v1.JobState.UNSPECIFIED}


def _labels(pairs: tuple[str, ...]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--label")
        labels[key] = value
    return labels


def _source(source: str | None, parent: str) -> tuple[Path | None, dict[str, str]]:
    """A local file to upload, or the CreateJob source to name."""
    if parent:
        if source:
            raise click.UsageError("give FILE|URL or --parent JOB, not both")
        return None, {"parent": parent}
    if not source:
        raise click.UsageError("give FILE|URL to transcribe, or --parent JOB to reuse a transcript")
    path = Path(source)
    if path.is_file():
        return path, {}
    if _URL.match(source):
        return None, {"source_uri": source}
    if source.startswith("media/"):
        return None, {"media": source}
    raise click.BadParameter(f"no such file: {source}", param_hint="FILE|URL")


async def _submit(
    client: ReelscribeClient,
    path: Path | None,
    source: dict[str, str],
    *,
    options: v1.JobOptions | None = None,
    labels: dict[str, str] | None = None,
    request_id: str | None = None,
    follow_job: bool = False,
    show_results: bool = False,
) -> None:
    if options is not None:
        # Before uploading: a model that cannot do the job is a usage error (exit 2).
        await check_choice(client, options.model, options.language)
    if path is not None:
        # A repeated request id repeats the upload too (one upload id makes one
        # media object), so the same submission names the same job.
        upload_id = str(uuid.uuid5(uuid.NAMESPACE_OID, request_id)) if request_id else None
        source = {"media": (await client.upload(path, upload_id=upload_id)).name}
    job = await client.create_job(
        **source, options=options, labels=labels, request_id=request_id or None
    )
    click.echo(job.name)
    if follow_job or show_results:
        check_succeeded(await follow(client, job.name))
    if show_results:
        click.echo("\n--- transcript ---")
        click.echo(await client.export(job.name, v1.ExportFormat.TXT), nl=False)
        summary = await client.summary(job.name, v1.SummaryFormat.SHORT)
        click.echo(f"\n--- summary ({summary.provider}) ---")
        click.echo(summary.text or "(nothing was said)")
        for c in await client.chapters(job.name):
            click.echo(f"chapter {span(c.start_seconds, c.end_seconds)}  {c.title}")


def submit_and_show(address: str, tok: str, path: Path) -> None:
    """Upload `path`, follow its job with progress bars, then print its results."""
    run(address, tok, lambda c: _submit(c, path, {}, show_results=True))


@command()
@click.argument("source", metavar="[FILE|URL]", required=False)
@click.option("--parent", default="", metavar="JOB", help="reuse JOB's transcript (no FILE)")
@click.option("--watch", "follow_job", is_flag=True, help="follow progress until the job ends")
@click.option("--language", default="", help="spoken language, BCP-47 (empty: detect)")
@click.option("--model", default="", help="speech model (empty: the server's)")
@click.option("--no-word-timestamps", is_flag=True, help="leave out word timestamps")
@click.option("--skip-cache", is_flag=True, help="transcribe again even if cached")
@click.option(
    "--stage",
    "stages",
    multiple=True,
    type=click.Choice(list(STAGES)),
    help="a stage to run after transcription (repeatable)",
)
@click.option("--highlights", "highlight_count", type=int, default=0, help="highlights to choose")
@click.option("--translate-to", default="", metavar="LANG", help="translate into LANG")
@click.option("--speakers", "diarize", is_flag=True, help="label who speaks when")
@click.option(
    "--speaker-count",
    type=int,
    default=0,
    metavar="N",
    help="speakers in the recording, 1-20 (implies --speakers; default: detect)",
)
@click.option(
    "--max-speakers", type=int, default=0, metavar="N", help="most speakers to detect (8)"
)
@click.option("--clips", is_flag=True, help="render highlight clips (--stage render-clips)")
@click.option(
    "--burn-captions", is_flag=True, help="burn captions into the clips (implies --clips)"
)
@click.option("--vertical", is_flag=True, help="render the clips 9:16 (implies --clips)")
@click.option("--callback", default="", metavar="URL", help="POST the job's events to URL")
@click.option("--callback-stage-events", is_flag=True, help="POST stage events too")
@click.option("--label", "label_pairs", multiple=True, metavar="KEY=VALUE", help="repeatable")
@click.option("--request-id", default="", help="idempotency key (a UUID; default: a new one)")
@address_option
def submit(
    source: str | None,
    parent: str,
    follow_job: bool,
    language: str,
    model: str,
    no_word_timestamps: bool,
    skip_cache: bool,
    stages: tuple[str, ...],
    highlight_count: int,
    translate_to: str,
    diarize: bool,
    speaker_count: int,
    max_speakers: int,
    clips: bool,
    burn_captions: bool,
    vertical: bool,
    callback: str,
    callback_stage_events: bool,
    label_pairs: tuple[str, ...],
    request_id: str,
    address: str,
) -> None:
    """Create a job for FILE (uploaded), a URL, uploaded media/ID or --parent JOB.

    Prints the job name. With --watch it follows the job and exits 0 when it
    SUCCEEDED, 3 when it FAILED and 4 when it was CANCELLED.
    """
    path, where = _source(source, parent)
    extra = [STAGES[s] for s in stages]
    if clips or burn_captions or vertical:
        extra.append(v1.Stage.RENDER_CLIPS)
    options = v1.JobOptions(
        language=language,
        model=model,
        disable_word_timestamps=no_word_timestamps,
        skip_cache=skip_cache,
        extra_stages=list(dict.fromkeys(extra)),
        highlight_count=highlight_count,
        translate_to=translate_to,
        diarize=diarize,
        speaker_count=speaker_count,
        max_speakers=max_speakers,
        clip_burn_captions=burn_captions,
        clip_vertical=vertical,
        callback_uri=callback,
        callback_stage_events=callback_stage_events,
    )
    labels = _labels(label_pairs)
    run(
        address,
        token(),
        lambda c: _submit(
            c,
            path,
            where,
            options=options,
            labels=labels,
            request_id=request_id,
            follow_job=follow_job,
        ),
    )


@command()
@click.argument("job")
@address_option
def watch(job: str, address: str) -> None:
    """Stream JOB's progress until it ends.

    Exits 0 when it SUCCEEDED, 3 when it FAILED and 4 when it was CANCELLED.
    """

    async def _work(client: ReelscribeClient) -> None:
        check_succeeded(await follow(client, job))

    run(address, token(), _work)


def _time(job_time: object) -> str:
    strftime = getattr(job_time, "strftime", None)
    return strftime("%Y-%m-%d %H:%M:%S") if strftime else ""


def _options(opts: v1.JobOptions | None) -> str:
    if opts is None:
        return ""
    parts = [
        f"language={opts.language}" if opts.language else "",
        f"model={opts.model}" if opts.model else "",
        "no-word-timestamps" if opts.disable_word_timestamps else "",
        "skip-cache" if opts.skip_cache else "",
        "stages=" + ",".join(s.name.lower() for s in opts.extra_stages)
        if opts.extra_stages
        else "",
        f"highlights={opts.highlight_count}" if opts.highlight_count else "",
        f"translate-to={opts.translate_to}" if opts.translate_to else "",
        "speakers" if opts.diarize else "",
        f"speaker-count={opts.speaker_count}" if opts.speaker_count else "",
        f"max-speakers={opts.max_speakers}" if opts.max_speakers else "",
        "burn-captions" if opts.clip_burn_captions else "",
        "vertical" if opts.clip_vertical else "",
        f"callback={opts.callback_uri}" if opts.callback_uri else "",
        "callback-stage-events" if opts.callback_stage_events else "",
    ]
    return " ".join(p for p in parts if p)


def describe(job: v1.Job) -> list[tuple[str, str]]:
    """`job`'s fields as (label, value) rows, empty ones left out."""
    error = job.error
    duration = job.media_duration.total_seconds() if job.media_duration else 0.0
    rows = [
        ("name", job.name),
        ("state", job.state.name),
        ("stage", job.stage.name.lower()),
        ("progress", f"{job.progress * 100:.1f}%"),
        ("message", job.message),
        ("error", f"{error.reason}: {error.message}" if error and error.reason else ""),
        ("source", job.media or job.source_uri or ""),
        ("parent", job.parent),
        ("options", _options(job.options)),
        ("labels", " ".join(f"{k}={v}" for k, v in sorted(job.labels.items()))),
        ("duration", f"{duration:.1f} s" if duration else ""),
        ("cache hit", "yes" if job.cache_hit else ""),
        ("attempts", str(job.attempts) if job.attempts else ""),
        ("created", _time(job.create_time)),
        ("started", _time(job.start_time)),
        ("ended", _time(job.end_time)),
        ("events", str(job.last_event_seq)),
    ]
    return [(k, v) for k, v in rows if v]


@command(name="job")
@click.argument("job_name", metavar="JOB")
@address_option
def job_command(job_name: str, address: str) -> None:
    """Show JOB: state, stage, progress, error, source, options, labels, times."""

    async def _work(client: ReelscribeClient) -> None:
        for label, value in describe(await client.get_job(job_name)):
            click.echo(f"{label:<10} {value}")

    run(address, token(), _work)


@command()
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(list(_STATES)),
    help="only jobs in this state (repeatable)",
)
@address_option
def jobs(states: tuple[str, ...], address: str) -> None:
    """List your jobs, newest first."""

    async def _work(client: ReelscribeClient) -> None:
        shown = 0
        async for job in client.list_jobs(states=[_STATES[s] for s in states]):
            reason = job.error.reason if job.error else ""
            click.echo(
                f"{job.name}  {job.state.name:<9}  {job.progress * 100:5.1f}%  "
                f"{_time(job.create_time)}  {reason}".rstrip()
            )
            shown += 1
        if not shown:
            which = " ".join(states)
            nothing(f"no {which + ' ' if which else ''}jobs (create one: reelscribe submit FILE)")

    run(address, token(), _work)


@command()
@click.argument("job")
@address_option
def cancel(job: str, address: str) -> None:
    """Cancel JOB (queued or running); its running stages stop within about a second."""

    async def _work(client: ReelscribeClient) -> None:
        cancelled = await client.cancel_job(job)
        click.echo(f"{cancelled.name} {cancelled.state.name}")

    run(address, token(), _work)


@command()
@click.argument("job")
@address_option
def delete(job: str, address: str) -> None:
    """Delete a finished JOB with its events, results, clips and child jobs."""

    async def _work(client: ReelscribeClient) -> None:
        await client.delete_job(job)
        click.echo(f"deleted {job}")

    run(address, token(), _work)


@command()
@click.argument("job")
@address_option
def deliveries(job: str, address: str) -> None:
    """List the attempts to POST JOB's events to its --callback URL, oldest first."""

    async def _work(client: ReelscribeClient) -> None:
        shown = 0
        async for d in client.webhook_deliveries(job):
            status = "delivered" if d.delivered else f"failed {d.error}".rstrip()
            click.echo(
                f"{_time(d.time)}  seq {d.event_seq:>4}  attempt {d.attempt}  "
                f"HTTP {d.http_status or '-'}  {status}"
            )
            shown += 1
        if not shown:
            nothing(f"no webhook deliveries for {job} (it has no --callback URL, or none yet)")

    run(address, token(), _work)
