"""Fetching a URL job's media: a direct media URL, or a web page holding media.

The URL is downloaded through the direct-URL guard (`reelscribe.fetch`). When
what came back is a web page, the page's media is found and downloaded with
yt-dlp, every connection of which passes the same guard (`reelscribe.pages`),
and what the page says about it (title, uploader, claimed length, chapters) is
kept on the job. Either way the file is probed before anything is decoded.
"""

from __future__ import annotations

from pathlib import Path

from reelscribe import fetch, media, pages
from reelscribe.db import jobs as jobs_db
from reelscribe.errors import MediaError
from reelscribe.states import Stage
from workers import decoding
from workers.context import FINISHED, STARTED, JobContext


def url_source(ctx: JobContext, url: str, dest: Path) -> Path:
    """The job's media downloaded to `dest` (or beside it, for a page); MediaError
    when refused."""
    settings = ctx.settings
    ctx.running_event(STARTED, set_fields=ctx.at(Stage.INGEST), message="downloading")
    limits = ctx.download_limits()
    size = fetch.download(url, dest, limits)
    ctx.check_cancelled(force=True)
    if pages.looks_like_html(dest):
        dest.unlink(missing_ok=True)
        dest = _page_media(ctx, url, dest.parent / "page", limits)
        size = dest.stat().st_size
    info = media.probe(dest)
    # Media that itself claims to be too long is refused without decoding; a
    # claim of less decides nothing (the decoded length does).
    if info.duration_s is not None and info.duration_s > settings.max_media_duration_s:
        raise MediaError(
            "MEDIA_TOO_LONG",
            f"the media claims to last {decoding.span(info.duration_s)}; "
            f"the limit is {decoding.span(settings.max_media_duration_s)}",
        )
    ctx.running_event(
        FINISHED,
        # Downloading is counted as half of preparing the audio.
        set_fields=ctx.at(Stage.EXTRACT_AUDIO, 0.5),
        stage_progress=1.0,
        message=f"downloaded {size} bytes",
    )
    return dest


def _page_media(ctx: JobContext, url: str, into: Path, limits: fetch.FetchLimits) -> Path:
    """The media of the web page at `url`, with what the page said about it kept."""
    ctx.running_event(
        STARTED, set_fields=ctx.at(Stage.INGEST), message="a web page: finding its media"
    )
    found = pages.download(
        url,
        into,
        limits,
        max_duration_s=ctx.settings.max_media_duration_s,
        progress=lambda fraction: ctx.progress(
            Stage.INGEST, fraction, f"downloading the page's media: {fraction:.0%}"
        ),
    )
    ctx.db(
        jobs_db.set_source_page,
        ctx.job_id,
        {
            "title": found.title,
            "uploader": found.uploader,
            "duration_s": found.duration_s,
            "chapters": [
                {"title": c.title, "start_s": c.start_s, "end_s": c.end_s} for c in found.chapters
            ],
        },
    )
    return found.path


def media_again(ctx: JobContext, url: str, dest: Path) -> Path:
    """The media of a URL job fetched again by a later stage (no events; a page's
    media is found again the same way)."""
    page_dir = dest.parent / "page"
    kept = sorted(page_dir.glob("page.*")) if page_dir.exists() else []
    if kept:
        return kept[0]
    if dest.exists():
        return dest
    limits = ctx.download_limits()
    fetch.download(url, dest, limits)
    if not pages.looks_like_html(dest):
        return dest
    dest.unlink(missing_ok=True)
    return pages.download(
        url, page_dir, limits, max_duration_s=ctx.settings.max_media_duration_s
    ).path
