"""The web console in a real browser (headless Chromium driven by Playwright)
against the real stack over the gRPC-Web listener: upload, live progress
through a reload, the transcript growing chunk by chunk, the player synced to
the transcript, an export, search to the moment, and the server's error for a
file that is not media.

Set REELSCRIBE_CONSOLE_SHOTS to a folder to save screenshots of the main
views there (how docs/img/ was made).
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import grpc
import pytest
from playwright.async_api import Browser, Route, async_playwright, expect

from reelscribe.v1 import job_service_pb2
from server.app import ServerApp
from tests.support.api import Api
from tests.support.browser import CHROMIUM, SHOTS, event_seqs, shot, signed_in, web_url
from tests.support.media import MEDIA_DIR
from tests.support.mediagen import lecture_wav
from tests.support.tokens import token_for

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt)")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        await launched.close()


async def test_upload_watch_reload_seek_export_and_search(
    browser: Browser, server: ServerApp, tmp_path: Path
) -> None:
    # About 90 s of speech (a 2.8 MB WAV: three upload parts), long enough
    # to reload the page while it is transcribed.
    talk = lecture_wav(tmp_path / "lecture-talk.wav", repeat=4)
    page = await signed_in(browser, server, "console-user")
    parts: list[str] = []
    page.on("request", lambda r: parts.append(r.url) if r.url.endswith("/AppendUpload") else None)
    await page.set_input_files("#file", str(talk))
    await expect(page.locator(".upload[data-file='lecture-talk.wav']")).to_contain_text("of 2.8 MB")
    await page.wait_for_url(re.compile(r"#/jobs/[0-9a-f-]+$"), timeout=60_000)
    job_url = page.url
    assert len(parts) == 3  # 1 MiB parts
    await expect(page.locator("h1")).to_have_text("lecture-talk.wav")

    # Reload while the job is under way: the page replays the log and follows it
    # live. Its watches are given a 300 ms deadline (grpc-timeout), so the
    # server keeps ending them and the page keeps resuming after its last event.
    watches: list[int] = []

    async def short_deadline(route: Route) -> None:
        body = route.request.post_data_buffer or b""
        watches.append(job_service_pb2.WatchJobRequest.FromString(body[5:]).after_seq)
        await route.continue_(headers={**route.request.headers, "grpc-timeout": "300m"})

    job_page = page.locator(".job-page")
    await expect(job_page).to_have_attribute("data-state", re.compile("^(queued|running)$"))
    before = await page.locator("#overall").evaluate("el => el.value")
    await page.route("**/reelscribe.v1.JobService/WatchJob", short_deadline)
    await page.reload()
    await expect(page.locator(".job-page")).to_have_attribute(
        "data-state", "succeeded", timeout=120_000
    )
    await shot(page, "job")
    after = await page.locator("#overall").evaluate("el => el.value")
    assert after == 1.0 >= before
    seqs = await event_seqs(page)
    assert seqs == list(range(1, len(seqs) + 1)), seqs  # every event once, none missing
    # Each resumed watch asked for the events after the last one drawn.
    assert watches[0] == 0 and watches == sorted(watches), watches
    assert 0 < watches[-1] <= seqs[-1], watches
    await page.unroute("**/reelscribe.v1.JobService/WatchJob")
    cells = page.locator("#chunks .cell")
    assert await cells.count() >= 1
    assert await page.locator("#chunks .cell.done").count() == await cells.count()

    # The transcript beside the player: a click on a line plays from there.
    lines = page.locator("#transcript .line")
    await expect(lines.nth(2)).to_be_attached(timeout=20_000)
    await expect(page.locator("#player")).to_have_js_property("readyState", 4, timeout=20_000)
    third = lines.nth(2)
    start = float(await third.locator("button.time").get_attribute("data-start") or "nan")
    await third.locator("button.time").click()
    await expect(third).to_have_class(re.compile(r"\bcurrent\b"), timeout=10_000)
    now = await page.locator("#player").evaluate("el => el.currentTime")
    assert start <= now < start + 3, (start, now)
    await shot(page, "job-transcript")

    # Export: an SRT file from the server's ExportTranscript.
    async with page.expect_download() as waiting:
        await page.locator(".exports button[data-format='SRT']").click()
    srt = Path(await (await waiting.value).path()).read_text()
    assert srt.startswith("1\n00:00:")
    assert re.search(r"-->", srt)

    # Search: a hit opens its job at the moment, and the player is there.
    await page.goto(f"{web_url(server)}/#/search")
    await page.fill("#q", "chlorophyll")
    await page.press("#q", "Enter")
    hit = page.locator("#hits a.hit").first
    await expect(hit).to_be_visible(timeout=20_000)
    await shot(page, "search")
    href = await hit.get_attribute("href") or ""
    moment = float(href.split("?t=")[1])
    await hit.click()
    assert page.url.startswith(job_url.split("#")[0]) and "?t=" in page.url
    await expect(page.locator("#player")).to_have_js_property("readyState", 4, timeout=20_000)
    at = await page.locator("#player").evaluate("el => el.currentTime")
    assert abs(at - moment) < 0.5, (at, moment)
    if SHOTS:
        await page.set_viewport_size({"width": 390, "height": 844})
        await shot(page, "phone")
        await page.set_viewport_size({"width": 1280, "height": 900})
        await page.goto(f"{web_url(server)}/#/")
        await expect(page.locator(f"#jobs li[data-job='{job_url.split('#/')[1]}']")).to_be_visible()
        await shot(page, "jobs")
    await page.context.close()


async def test_a_file_that_is_not_media_gets_the_servers_reason(
    browser: Browser, server: ServerApp, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("meeting notes, typed, not a recording\n" * 20)
    page = await signed_in(browser, server, "console-user-2")
    await page.set_input_files("#file", str(notes))
    alert = page.locator(".upload[data-file='notes.txt'] [role=alert]")
    await expect(alert).to_be_visible(timeout=30_000)
    await expect(alert).to_have_attribute("data-reason", "NOT_MEDIA")
    await expect(alert).to_contain_text("not a media file")
    await expect(alert).to_contain_text("INVALID_ARGUMENT")
    await expect(alert.locator("li code")).to_have_text("media")  # BadRequest's field
    await shot(page, "error")
    assert re.search(r"#/$", page.url)  # no job page for it
    await page.context.close()


async def test_an_upload_cut_off_resumes_after_a_reload(
    browser: Browser, server: ServerApp, tmp_path: Path
) -> None:
    talk = lecture_wav(tmp_path / "resumed.wav", repeat=4)  # 2.8 MB: three parts
    page = await signed_in(browser, server, "console-user-3")
    parts: list[str] = []
    page.on("request", lambda r: parts.append(r.url) if r.url.endswith("/AppendUpload") else None)

    async def first_part_only(route: Route) -> None:
        # The network fails after the first part: every later part is cut off.
        if len(parts) <= 1:
            await route.continue_()
        else:
            await route.abort()

    await page.route("**/AppendUpload", first_part_only)
    row = page.locator(".upload[data-file='resumed.wav']")
    await page.set_input_files("#file", str(talk))
    await expect(row).to_have_attribute("data-phase", "retrying", timeout=20_000)
    await expect(row).to_contain_text("uploaded 1.0 MB of 2.8 MB")
    await page.unroute("**/AppendUpload")

    # The browser kept the file: after a reload the upload goes on from the
    # server's count (GetUpload), with the two parts it lacks.
    parts.clear()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/GetUpload") else None)
    await page.reload()
    await page.wait_for_url(re.compile(r"#/jobs/[0-9a-f-]+$"), timeout=60_000)
    assert len(parts) == 2, parts
    assert asked
    await expect(page.locator("h1")).to_have_text("resumed.wav")
    await page.context.close()


async def test_summary_chapters_and_a_highlight_clip(browser: Browser, server: ServerApp) -> None:
    # A second tab of the same user sits on the job list, empty for now.
    watcher = await signed_in(browser, server, "console-user-4")
    await expect(watcher.locator("#jobs-h + div")).to_have_text("No jobs yet.")
    page = await signed_in(browser, server, "console-user-4")
    await page.get_by_label("Summary and chapters").check()
    await page.get_by_label("Highlight clips").check()
    await page.set_input_files("#file", str(MEDIA_DIR / "volcano.ogg"))
    await page.wait_for_url(re.compile(r"#/jobs/[0-9a-f-]+$"), timeout=60_000)
    await expect(page.locator(".job-page")).to_have_attribute(
        "data-state", "succeeded", timeout=120_000
    )
    # The other tab's list followed the job live (WatchJobs), with no reload.
    job = page.url.split("#/")[1]
    row = watcher.locator(f"#jobs li[data-job='{job}']")
    await expect(row.locator(".badge")).to_have_text("succeeded", timeout=10_000)
    await expect(row).to_contain_text("volcano.ogg")
    await expect(row).to_contain_text("100%")
    await watcher.context.close()
    await expect(page.locator("#summary p")).to_contain_text("molten rock")
    chapter = page.locator("#chapters button").first
    await expect(chapter).to_be_visible()

    # A clip from ReadClip, played in the page and saved as a file of its size.
    highlight = page.locator("#highlights .highlight").first
    await highlight.get_by_role("button", name="Play clip").click()
    clip = highlight.locator(".clip-player")
    await expect(clip).to_have_js_property("readyState", 4, timeout=20_000)
    assert (await clip.get_attribute("src") or "").startswith("blob:")
    async with page.expect_download() as waiting:
        await highlight.get_by_role("button", name="Download clip").click()
    saved = Path(await (await waiting.value).path())
    size = await highlight.locator("[data-clip-bytes]").get_attribute("data-clip-bytes")
    assert saved.stat().st_size == int(size or 0) > 1000  # ListHighlights' size, ReadClip's bytes
    await shot(page, "highlights")
    await page.context.close()

    # A browser without a copy of the upload loads the recording with ReadMedia.
    other = await signed_in(browser, server, "console-user-4")
    await other.goto(f"{web_url(server)}/#/{job}")
    await other.locator("#load-media").click()
    player = other.locator("#player")
    await expect(player).to_have_js_property("readyState", 4, timeout=20_000)
    assert await player.evaluate("el => el.duration") > 1.0
    await other.context.close()

    # At phone width nothing scrolls sideways, and the keyboard alone loads the
    # recording and plays from a line.
    phone = await signed_in(browser, server, "console-user-4", width=390, height=844)
    await phone.goto(f"{web_url(server)}/#/{job}")
    line = phone.locator("#transcript .line").last
    await expect(line).to_be_attached(timeout=20_000)
    assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await phone.locator("#load-media").focus()
    await phone.keyboard.press("Enter")
    await expect(phone.locator("#player")).to_have_js_property("readyState", 4, timeout=20_000)
    start = float(await line.locator("button.time").get_attribute("data-start") or "nan")
    await line.locator("button.time").focus()
    await phone.keyboard.press("Enter")
    await expect(line).to_have_class(re.compile(r"\bcurrent\b"), timeout=10_000)
    now = await phone.locator("#player").evaluate("el => el.currentTime")
    assert start <= now < start + 3, (start, now)
    await shot(phone, "phone-keyboard")
    await phone.context.close()


@pytest.fixture(scope="module")
def media_site() -> Iterator[str]:
    """tests/media over HTTP on 127.0.0.2, the one private network URL sources may reach here."""
    handler = functools.partial(QuietFiles, directory=str(MEDIA_DIR))
    site = http.server.ThreadingHTTPServer(("127.0.0.2", 0), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield f"http://127.0.0.2:{site.server_address[1]}"
    site.shutdown()


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


async def test_a_pasted_link_is_transcribed_and_played_from_its_source(
    browser: Browser, server: ServerApp, media_site: str
) -> None:
    page = await signed_in(browser, server, "console-user-5")
    # A link the server refuses: its reason and field, under the link.
    await page.fill("#url", "http://10.1.2.3/talk.mp3")
    await page.press("#url", "Enter")
    refused = page.locator(".upload[data-file='http://10.1.2.3/talk.mp3'] [role=alert]")
    await expect(refused).to_contain_text("INVALID_ARGUMENT")
    await expect(refused.locator("li code")).to_have_text("source_uri")

    url = f"{media_site}/ocean.ogg"
    await page.fill("#url", url)
    await page.press("#url", "Enter")
    await page.wait_for_url(re.compile(r"#/jobs/[0-9a-f-]+$"), timeout=30_000)
    await expect(page.locator(".job-page")).to_have_attribute(
        "data-state", "succeeded", timeout=120_000
    )
    # The API streams no media back: the browser plays the link itself.
    player = page.locator("#player")
    await expect(player).to_have_js_property("readyState", 4, timeout=20_000)
    assert await player.evaluate("el => el.currentSrc") == url
    line = page.locator("#transcript .line").first
    await line.locator(".word").nth(2).click()
    start = float(await line.locator(".word").nth(2).get_attribute("data-start") or "nan")
    now = await player.evaluate("el => el.currentTime")
    assert start <= now < start + 2, (start, now)
    await page.context.close()


#: The page's provisional lines and the job's state, read in one frame.
PROVISIONAL_NOW = """() => ({
  state: document.querySelector('.job-page')?.dataset.state,
  facts: document.querySelector('#partial-facts')?.textContent ?? '',
  lines: [...document.querySelectorAll('#partial .line.provisional')].map(
    (l) => [Number(l.dataset.chunk), Number(l.dataset.start),
            l.querySelector('.text').textContent]),
})"""


async def test_the_transcript_grows_chunk_by_chunk_while_the_job_runs(
    browser: Browser,
    extra_server: Callable[..., Awaitable[ServerApp]],
    short_chunk_worker: str,
    tmp_path: Path,
) -> None:
    app = await extra_server(queue_name=short_chunk_worker)
    user = "console-user-6"
    # 66 s, three readings of a lecture: three chunks (cut at the silences between readings).
    talk = lecture_wav(tmp_path / "grows.wav", repeat=3)
    # Created over native gRPC: the upload through the page is tested above.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = Api(channel, token_for(user))
        job = await api.create((await api.upload(talk)).name, skip_cache=True)
    page = await signed_in(browser, app, user)
    await page.goto(f"{web_url(app)}/#/{job.name}")

    # Provisional lines while the job still runs (state and lines read in one frame).
    await page.wait_for_function(
        "() => document.querySelector('#partial .line.provisional')"
        " && document.querySelector('.job-page')?.dataset.state === 'running'",
        timeout=90_000,
    )
    seen = [await page.evaluate(PROVISIONAL_NOW)]
    await shot(page, "job-provisional")
    # Read again as chunks finish, until the stored transcript replaces them
    # (or the job leaves RUNNING; at most two minutes).
    now = seen[0]
    for _ in range(480):
        if now["state"] != "running" or not await page.locator("#partial").count():
            break
        await page.wait_for_timeout(250)
        now = await page.evaluate(PROVISIONAL_NOW)
        if now["lines"] and now["lines"] != seen[-1]["lines"]:
            seen.append(now)
    first = seen[0]
    counted = re.fullmatch(r"(\d+) of (\d+) chunks transcribed\..*", first["facts"])
    assert counted, first["facts"]
    done, total = int(counted[1]), int(counted[2])
    assert 1 <= done < total, first["facts"]
    for view in seen:
        # In time order, whichever chunk finished first; only ever growing.
        assert [line[:2] for line in view["lines"]] == sorted(line[:2] for line in view["lines"])
        assert set(map(tuple, first["lines"])) <= set(map(tuple, view["lines"]))

    # The stored transcript replaces the provisional one, with the same words.
    await expect(page.locator(".job-page")).to_have_attribute(
        "data-state", "succeeded", timeout=120_000
    )
    await expect(page.locator("#transcript .line").first).to_be_visible()
    assert await page.locator("#partial").count() == 0
    stored = await page.locator("#transcript .line .text").all_text_contents()
    provisional = [" ".join(line[2].split()) for line in seen[-1]["lines"]]
    assert provisional and set(provisional) <= {" ".join(t.split()) for t in stored}, (
        provisional,
        stored,
    )
