"""Media from a web page: a video site's page, or any page with a media or HLS link.

yt-dlp finds the media (its site extractors, or the generic one for any page)
and downloads the best audio (or the best single format holding audio), every
connection through a `GuardProxy`, so the page, its playlists and each segment
must be at addresses a direct URL could use, redirects included. The same caps
apply as to direct URLs: bytes, the download's deadline and, from what the
page says, the media's length. A page listing several videos is refused
(submit each one's URL). FFmpeg is the bundled one (imageio-ffmpeg), and only
reads files yt-dlp has already downloaded.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelscribe import fetch
from reelscribe.errors import MediaError
from reelscribe.guardproxy import GuardProxy

#: How much of a page is read to find its title for an error message.
_TITLE_PAGE_BYTES = 1024 * 1024
#: yt-dlp's extractors for any page (not a site of its own), which number titles.
_GENERIC_EXTRACTORS = frozenset({"Generic", "HTML5MediaEmbed"})
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Chapter:
    """A chapter as the page lists it."""

    title: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class PageMedia:
    """The downloaded media and what the page said about it."""

    path: Path
    title: str = ""
    uploader: str = ""
    #: Seconds, as the page claims (None: not said); decoding measures the truth.
    duration_s: float | None = None
    chapters: tuple[Chapter, ...] = field(default_factory=tuple)


def looks_like_html(path: Path) -> bool:
    """Whether a downloaded file is a web page rather than media."""
    with path.open("rb") as f:
        head = f.read(1024).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<head" in head[:512]


def download(
    url: str,
    dest_dir: Path,
    limits: fetch.FetchLimits,
    *,
    max_duration_s: float,
    progress: Callable[[float], None] = lambda fraction: None,
) -> PageMedia:
    """Download the media of the page at `url` into `dest_dir`; MediaError when refused."""
    import yt_dlp

    dest_dir.mkdir(parents=True, exist_ok=True)
    with GuardProxy(
        limits.allowed_networks, max_bytes=limits.max_bytes, timeout_s=limits.timeout_s
    ) as proxy:
        log = _Log()
        options = _options(proxy.url, dest_dir, limits, progress, log)
        try:
            with yt_dlp.YoutubeDL(options) as ydl:
                info = _single(ydl.extract_info(url, download=False))
                claimed = info.get("duration")
                if claimed and float(claimed) > max_duration_s:
                    raise MediaError(
                        "MEDIA_TOO_LONG",
                        f"the page's media lasts {float(claimed) / 3600:.1f} h; the limit is "
                        f"{max_duration_s / 3600:.1f} h",
                    )
                done = ydl.process_ie_result(info, download=True)
        except MediaError:
            raise
        except yt_dlp.utils.YoutubeDLError as exc:
            raise _reason(exc, proxy, url, limits) from exc
        if proxy.state.too_large:
            raise MediaError("URL_TOO_LARGE", f"more than the limit of {limits.max_bytes} bytes")
        requested = done.get("requested_downloads") or []
        files = [Path(d["filepath"]) for d in requested if d.get("filepath")]
        if not files and log.said("larger than max-filesize"):
            # yt-dlp skips (and only logs) a file announced over max_filesize.
            raise MediaError("URL_TOO_LARGE", f"more than the limit of {limits.max_bytes} bytes")
        if not files or not files[0].exists():
            raise MediaError("NOT_MEDIA", f"no media could be downloaded from {_name(info, url)}")
    title = str(info.get("title") or "")
    if info.get("extractor_key") in _GENERIC_EXTRACTORS:
        # The generic extractor numbers what it finds ("Talk (1)"); the page's
        # own <title> is what its reader saw.
        title = page_title(url, limits) or title
    return PageMedia(
        path=files[0],
        title=title,
        uploader=str(info.get("uploader") or info.get("channel") or ""),
        duration_s=float(claimed) if claimed else None,
        chapters=tuple(
            Chapter(str(c.get("title") or ""), float(c["start_time"]), float(c["end_time"]))
            for c in info.get("chapters") or []
            if c.get("start_time") is not None and c.get("end_time") is not None
        ),
    )


def _options(
    proxy_url: str,
    dest_dir: Path,
    limits: fetch.FetchLimits,
    progress: Callable[[float], None],
    log: _Log,
) -> dict[str, Any]:
    import imageio_ffmpeg

    def hook(status: dict[str, Any]) -> None:
        total = status.get("total_bytes") or status.get("total_bytes_estimate")
        if status.get("status") == "downloading" and total:
            progress(min(float(status.get("downloaded_bytes") or 0) / float(total), 1.0))

    return {
        "proxy": proxy_url,
        "outtmpl": str(dest_dir / "page.%(ext)s"),
        # One file with audio: never a video+audio pair that needs merging.
        "format": "bestaudio/best",
        "noplaylist": True,
        "max_filesize": limits.max_bytes,
        "socket_timeout": min(limits.timeout_s, 30.0),
        "retries": 1,
        "fragment_retries": 1,
        "extractor_retries": 0,
        # Its own HLS downloader, whose requests go through the proxy (never FFmpeg's).
        "hls_prefer_native": True,
        "ffmpeg_location": imageio_ffmpeg.get_ffmpeg_exe(),
        "cachedir": False,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "progress_hooks": [hook],
        "logger": log,
    }


def _single(info: dict[str, Any]) -> dict[str, Any]:
    """The one video of a page; a page of several is refused."""
    if info.get("_type") not in ("playlist", "multi_video"):
        return info
    entries = [e for e in info.get("entries") or [] if e]
    if len(entries) == 1:
        return dict(entries[0])
    raise MediaError(
        "PLAYLIST_NOT_SUPPORTED",
        f"{_name(info, str(info.get('webpage_url') or ''))} lists {len(entries)} videos; "
        "create one job per video URL",
    )


def _reason(exc: Exception, proxy: GuardProxy, url: str, limits: fetch.FetchLimits) -> MediaError:
    """What went wrong, in the same reasons as a direct URL's download."""
    state = proxy.state
    if state.refused:
        return state.refused[0]
    if state.timed_out:
        return MediaError("URL_TIMEOUT", "the download took too long")
    text = str(exc)
    if state.too_large or "larger than max-filesize" in text:
        return MediaError("URL_TOO_LARGE", f"more than the limit of {limits.max_bytes} bytes")
    if "Unsupported URL" in text or "No video formats" in text or "no suitable" in text.lower():
        title = page_title(url, limits)
        where = f"the page {title!r}" if title else "the page"
        return MediaError("NOT_MEDIA", f"{where} has no audio or video that could be found")
    return MediaError("URL_UNREACHABLE", f"the page could not be read: {text[:300]}")


def page_title(url: str, limits: fetch.FetchLimits) -> str:
    """The page's <title>, read through the direct-URL guard ("" if none)."""
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "page.html"
        capped = fetch.FetchLimits(
            max_bytes=_TITLE_PAGE_BYTES,
            timeout_s=min(limits.timeout_s, 15.0),
            allowed_networks=limits.allowed_networks,
        )
        try:
            fetch.download(url, dest, capped)
        except MediaError:
            return ""
        found = _TITLE.search(dest.read_bytes())
    if not found:
        return ""
    return " ".join(found.group(1).decode("utf-8", "replace").split())[:200]


def _name(info: dict[str, Any], url: str) -> str:
    title = info.get("title")
    return f"the page {title!r}" if title else (url or "the page")


class _Log:
    """yt-dlp's log, kept in memory: errors come back as exceptions, but a file
    skipped for its size is only said in the log."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, msg: str) -> None:
        """Keep."""
        self.lines.append(msg)

    def info(self, msg: str) -> None:
        """Keep."""
        self.lines.append(msg)

    def warning(self, msg: str) -> None:
        """Keep."""
        self.lines.append(msg)

    def error(self, msg: str) -> None:
        """Keep."""
        self.lines.append(msg)

    def said(self, text: str) -> bool:
        """Whether any line says `text`."""
        return any(text in line for line in self.lines)
