"""Client commands that read one job's results: transcript, summary, highlights,
speakers."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import cast

import click
from reelscribe_client import ReelscribeClient, v1

from cli.remote import address_option, command, nothing, run, span, token

_FORMATS = {
    "txt": v1.ExportFormat.TXT,
    "json": v1.ExportFormat.JSON,
    "srt": v1.ExportFormat.SRT,
    "vtt": v1.ExportFormat.VTT,
}


@command()
@click.argument("job")
@click.option("--format", "fmt", type=click.Choice(sorted(_FORMATS)), default="txt")
@address_option
def transcript(job: str, fmt: str, address: str) -> None:
    """Print JOB's transcript."""

    async def _work(client: ReelscribeClient) -> None:
        text = await client.export(job, _FORMATS[fmt])
        if text.strip():
            sys.stdout.write(text)
        else:
            nothing(f"{job}: nothing was said")

    run(address, token(), _work)


@command()
@click.argument("job")
@click.option(
    "--format", "fmt", type=click.Choice(["short", "bullets", "detailed"]), default="short"
)
@address_option
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
                click.echo(f"  {span(c.start_seconds, c.end_seconds)}  {c.title}")
        else:
            click.echo("\n(no chapters)")

    run(address, token(), _work)


def _clip_path(directory: Path, highlight: v1.Highlight) -> Path:
    ext = ".mp4" if highlight.clip_mime_type.startswith("video/") else ".m4a"
    return directory / (highlight.name.rsplit("/", 1)[-1] + ext)


@command()
@click.argument("job")
@click.option(
    "--download",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="save each rendered clip and its .srt captions in DIR",
)
@address_option
def highlights(job: str, download: Path | None, address: str) -> None:
    """Print JOB's highlights (time range, score, text), best first.

    --download DIR saves each rendered clip with its captions beside it
    (`1.mp4` and `1.srt`); a job without rendered clips is an error that says
    how to render them.
    """

    async def _work(client: ReelscribeClient) -> None:
        found = await client.highlights(job)
        if not found:
            nothing(f"{job} has no highlights (nothing in it stood out)")
        for h in found:
            who = f"{h.speaker}: " if h.speaker else ""
            click.echo(f"{span(h.start_seconds, h.end_seconds)}  {h.score:.2f}  {who}{h.text}")
        if download is None:
            return
        rendered = [h for h in found if h.clip_size_bytes]
        if not rendered:
            raise click.ClickException(
                f"{job} has no rendered clips; render them with: "
                f"reelscribe submit --parent {job} --clips"
            )
        await asyncio.to_thread(download.mkdir, parents=True, exist_ok=True)
        for h in rendered:
            dest = _clip_path(download, h)
            await client.download_clip(h.name, dest)
            click.echo(f"saved {dest}")
            if h.captions_srt:
                captions = dest.with_suffix(".srt")
                await asyncio.to_thread(captions.write_text, h.captions_srt, encoding="utf-8")
                click.echo(f"saved {captions}")

    run(address, token(), _work)


def _speakers() -> None:
    """List or name the speakers of a job that labelled them (submit --speakers)."""


speakers = cast(click.Group, command(name="speakers", cls=click.Group)(_speakers))


@speakers.command("list")
@click.argument("job")
@address_option
def list_speakers(job: str, address: str) -> None:
    """Print JOB's speakers: number, name and speaking time."""

    async def _work(client: ReelscribeClient) -> None:
        found = (await client.transcript(job, omit_words=True)).speakers
        if not found:
            nothing(f"{job} has no speakers (submit it with --speakers to label them)")
        for s in found:
            number = s.name.rsplit("/", 1)[-1]
            click.echo(f"{number}  {s.display_name}  {s.speaking_seconds:.1f} s")

    run(address, token(), _work)


@speakers.command("rename")
@click.argument("job")
@click.argument("number", type=int)
@click.argument("display_name", metavar="NAME")
@address_option
def rename_speaker(job: str, number: int, display_name: str, address: str) -> None:
    """Name speaker NUMBER of JOB (an empty NAME restores `Speaker NUMBER`)."""

    async def _work(client: ReelscribeClient) -> None:
        speaker = await client.rename_speaker(f"{job}/speakers/{number}", display_name)
        click.echo(f"{speaker.name}  {speaker.display_name}")

    run(address, token(), _work)
