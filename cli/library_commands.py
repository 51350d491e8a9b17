"""Client commands about the caller's whole library and account: upload,
delete-media, search, ask, usage, costs."""

from __future__ import annotations

from pathlib import Path

import click
from reelscribe_client import ReelscribeClient, v1

from cli.remote import address_option, command, nothing, run, span, token


@command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@address_option
def upload(file: Path, address: str) -> None:
    """Upload FILE (resuming a dropped stream) and print its media name.

    `reelscribe submit media/ID` then creates a job for it; `reelscribe
    delete-media media/ID` deletes it.
    """

    async def _work(client: ReelscribeClient) -> None:
        media = await client.upload(file)
        click.echo(media.name)

    run(address, token(), _work)


@command(name="delete-media")
@click.argument("media")
@address_option
def delete_media(media: str, address: str) -> None:
    """Delete uploaded MEDIA and its file, freeing storage quota.

    Jobs made from it keep their transcripts and results.
    """

    async def _work(client: ReelscribeClient) -> None:
        await client.delete_media(media)
        click.echo(f"deleted {media}")

    run(address, token(), _work)


@command()
@click.argument("query")
@click.option("--mode", type=click.Choice(["hybrid", "keyword", "semantic"]), default="hybrid")
@click.option("--limit", type=int, default=10, show_default=True)
@address_option
def search(query: str, mode: str, limit: int, address: str) -> None:
    """Search your whole library; prints job, time range (mm:ss) and snippet per hit."""

    async def _work(client: ReelscribeClient) -> None:
        reply = await client.search(query, mode=v1.SearchMode[mode.upper()], page_size=limit)
        for hit in reply.hits:
            click.echo(f"{hit.job}  {span(hit.start_seconds, hit.end_seconds)}  {hit.snippet}")
        if not reply.hits:
            nothing(f"no matches for {query!r}")

    run(address, token(), _work)


@command()
@click.argument("question")
@click.option("--job", default="", help="Ask about one job (default: the whole library).")
@address_option
def ask(question: str, job: str, address: str) -> None:
    """Answer QUESTION from your library, citing the moments it used."""

    async def _work(client: ReelscribeClient) -> None:
        reply = await client.ask(question, job=job)
        click.echo(reply.answer or "(no answer)")
        for c in reply.citations:
            click.echo(f"  {c.job}  {span(c.start_seconds, c.end_seconds)}  {c.text}")
        if not reply.citations:
            nothing("(no passages cited)")

    run(address, token(), _work)


def _bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _of(used: str, limit: float, shown: str) -> str:
    return f"{used} of {shown}" if limit else f"{used} (unlimited)"


@command()
@address_option
def usage(address: str) -> None:
    """Print your plan, stored jobs, audio minutes today and stored bytes, with the limits."""

    async def _work(client: ReelscribeClient) -> None:
        u = await client.get_usage()
        click.echo(f"plan          {u.plan}")
        click.echo(
            f"jobs          {_of(str(u.stored_jobs), u.max_stored_jobs, str(u.max_stored_jobs))}"
        )
        click.echo(
            "audio today   "
            + _of(
                f"{u.audio_minutes_today:.1f}",
                u.max_audio_minutes_per_day,
                f"{u.max_audio_minutes_per_day:.1f} min",
            )
        )
        click.echo(
            "storage       "
            + _of(_bytes(u.stored_bytes), u.max_stored_bytes, _bytes(u.max_stored_bytes))
        )

    run(address, token(), _work)


@command()
@click.option("--since", default="", help="First UTC day, YYYY-MM-DD (default: 30 days ago).")
@address_option
def costs(since: str, address: str) -> None:
    """Print your estimated processing cost per day."""

    async def _work(client: ReelscribeClient) -> None:
        report = await client.cost_report(start_date=since)
        for d in report.days:
            click.echo(
                f"{d.date}  {d.audio_minutes:8.1f} audio min  {d.cpu_seconds:8.1f} CPU s"
                f"  {d.provider_tokens:8d} tokens  ${d.cost_usd:.4f}"
            )
        if not report.days:
            nothing("no processing in this period")
        click.echo(f"total ${report.total_cost_usd:.4f}")

    run(address, token(), _work)
