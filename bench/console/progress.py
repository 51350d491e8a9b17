"""Time from a progress event to its paint in the console, with many pages open.

    .venv/bin/python -m bench.console.progress [--pages 100] [--minutes 10] [--record]

A `--minutes` lecture (bench.lecture, espeak-ng) is uploaded to the real stack
(embedded Postgres and Valkey, server with its gRPC-Web listener, Dramatiq
workers, tiny.en). `--pages` console pages are open in headless Chromium
(Debian's, driven by Playwright), each in its own browser context (a browser
keeps at most six HTTP/1.1 connections per host per profile, and each page
holds a stream). Once they show the job list, the job is created and every
page goes to its job page, where WatchJob delivers the events over gRPC-Web.

Latency of one event on one page: the page's wall clock when the frame that
draws the event has run (the task after the animation frame following its
DOM change) minus the event's `time`, stamped when the worker recorded it.
Only events recorded after the page had drawn its first event count: earlier
ones are replays of the log, not live deliveries. Worker, server and browser
share this machine's clock.

Baseline, same run: the same events received by one native gRPC WatchJob
subscriber (the Python client) in the bench process, with the same clock.
Goal (issue 18): measured, no fixed figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
from datetime import date

from reelscribe_client import ReelscribeClient, v1

from bench.console.__main__ import CHROMIUM, OUT, free_port
from bench.harness import bench_stack, wait_until_idle
from bench.lecture import make_lecture
from bench.record import record
from reelscribe.auth import mint_token

ADDRESS = "127.0.0.1:50182"

#: Runs in every page before its scripts: notes when each logged event
#: (`li[data-seq]` in the job page's event log, appended in the same task that
#: redraws the bars) has been painted, by the wall clock.
PAINT_PROBE = """
window.__painted = [];
new MutationObserver((records) => {
  const seqs = [];
  for (const r of records) for (const n of r.addedNodes) {
    if (n.nodeType === 1 && n.matches('#events li[data-seq]')) seqs.push(Number(n.dataset.seq));
  }
  if (!seqs.length) return;
  requestAnimationFrame(() => setTimeout(() => {
    const now = Date.now();
    for (const s of seqs) window.__painted.push([s, now]);
  }, 0));
}).observe(document, { childList: true, subtree: true });
"""


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def event_ms(event: v1.JobEvent) -> float:
    """The event's recorded time, in Unix milliseconds."""
    return event.time.timestamp() * 1000.0


async def native_watch(client: ReelscribeClient, job: str) -> dict[int, tuple[float, float]]:
    """seq -> (event time, receipt time), Unix ms, for every logged event."""
    seen: dict[int, tuple[float, float]] = {}
    async for event in client.watch(job):
        if event.seq > 0:
            seen[event.seq] = (event_ms(event), time.time() * 1000.0)
    return seen


async def run(web: str, token: str, lecture_path: str, pages: int) -> tuple[list, list, int]:
    """Page latencies (ms), native latencies (ms), and the number of logged events."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw, ReelscribeClient(ADDRESS, token, timeout_s=900) as client:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # Pages behind others would otherwise have their timers and frames throttled.
            args=[
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
            ],
        )
        opened = []
        for _ in range(pages):
            context = await browser.new_context(viewport={"width": 1024, "height": 800})
            await context.add_init_script(PAINT_PROBE)
            page = await context.new_page()
            await page.goto(f"http://{web}/#token={token}")
            opened.append(page)
        for page in opened:
            await page.wait_for_selector("#drop")
        uploaded = await client.upload(lecture_path)
        job = await client.create_job(media=uploaded.name, options=v1.JobOptions(model="tiny.en"))
        watcher = asyncio.create_task(native_watch(client, job.name))
        await asyncio.gather(*(p.evaluate(f"location.hash = '#/{job.name}'") for p in opened))
        native = await watcher
        await asyncio.sleep(2.0)  # the last paints
        page_ms: list[float] = []
        for page in opened:
            painted = await page.evaluate("window.__painted")
            if not painted:
                continue
            first_paint = min(at for _, at in painted)
            for seq, at in painted:
                if seq in native and native[seq][0] > first_paint:
                    page_ms.append(at - native[seq][0])
        await browser.close()
        native_ms = [got - at for at, got in native.values()]
        return page_ms, native_ms, len(native)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    lecture = make_lecture(OUT / f"console-lecture-{args.minutes:g}min.ogg", args.minutes)
    secret = "bench-console-" + "x" * 40
    web = f"127.0.0.1:{free_port()}"
    os.environ["REELSCRIBE_WEB_LISTEN"] = web
    # Every page holds a WatchJobs stream and then a WatchJob stream of one user.
    env = {"REELSCRIBE_MAX_STREAMS_PER_USER": str(4 * args.pages + 10)}
    with bench_stack(ADDRESS, secret, workers=(cores, 1), extra_env=env) as (stack, _):
        wait_until_idle(stack.server.pid)
        token = mint_token(secret, "bench-console")
        page_ms, native_ms, events = asyncio.run(run(web, token, str(lecture), args.pages))
    if not page_ms:
        raise SystemExit("no live event was painted")

    def summary(values: list[float]) -> str:
        return (
            f"p50 {percentile(values, 0.5):.0f} ms, p99 {percentile(values, 0.99):.0f} ms, "
            f"max {max(values):.0f} ms ({len(values)} samples)"
        )

    rows = [
        ("events logged by the job", f"{events}"),
        (f"event -> painted in the page, {args.pages} pages open", summary(page_ms)),
        ("baseline: event -> received by one native gRPC WatchJob", summary(native_ms)),
        (
            "median page latency over the native one",
            f"{statistics.median(page_ms) - statistics.median(native_ms):.0f} ms",
        ),
    ]
    for name, value in rows:
        print(f"{name:60} {value}")
    if args.record:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        record(
            "console-progress",
            title="Web console: progress event to paint, many pages open",
            command=(
                f"python -m bench.console.progress --pages {args.pages} --minutes {args.minutes:g}"
            ),
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings=(
                f"{args.minutes:g}-min lecture, tiny.en, {cores} worker processes; "
                f"headless Chromium {CHROMIUM}, one browser context per page; "
                "per-user stream cap raised to "
                f"{env['REELSCRIBE_MAX_STREAMS_PER_USER']}; load average at the end {load}"
            ),
            rows=rows,
        )


if __name__ == "__main__":
    main()
