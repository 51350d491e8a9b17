"""The console's transcript growing chunk by chunk: from a chunk finishing to
its provisional lines painted in the job page.

    .venv/bin/python -m bench.partial [--minutes 3] [--chunk-s 20] [--record]

A `--minutes` lecture (bench.lecture, espeak-ng) is transcribed with tiny.en
through the real stack (embedded Postgres and Valkey, server with its
gRPC-Web listener, Dramatiq workers cutting chunks of about `--chunk-s`)
while its job page is open in headless Chromium (Debian's, driven by
Playwright). For each chunk: the time from its PARTIAL_RESULT event (`time`,
stamped when the worker recorded it) to the first frame painted with its
provisional lines (the page then asks GetPartialTranscript for that chunk).
Baseline, same run: the time from each of those events to the frame painted
with it in the page's event log (WatchJob alone, no extra call). Both clocks
are this machine's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import time
from datetime import date
from pathlib import Path

from reelscribe_client import ReelscribeClient, v1

from bench.harness import bench_stack, wait_until_idle
from bench.lecture import make_lecture
from bench.record import record
from reelscribe.auth import mint_token

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
ADDRESS = "127.0.0.1:50183"
CHROMIUM = "/usr/bin/chromium"

#: Records, in wall-clock ms, the frame that first paints each chunk's
#: provisional lines and each event-log entry (the page redraws the list).
OBSERVE = """(() => {
  window.__painted = { chunks: {}, events: {} };
  const stamp = (bucket, key) => {
    if (key in bucket) return;
    bucket[key] = -1;
    requestAnimationFrame(() => setTimeout(() => {
      bucket[key] = performance.timeOrigin + performance.now();
    }, 0));
  };
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) {
      if (!(n instanceof HTMLElement)) continue;
      if (n.matches('li.line.provisional')) stamp(window.__painted.chunks, n.dataset.chunk);
      if (n.matches('#events li')) stamp(window.__painted.events, n.dataset.seq);
    }
  }).observe(document, { childList: true, subtree: true });
})();"""

#: GetPartialTranscript calls as the browser timed them: bytes and ms.
CALLS = """() => performance.getEntriesByType('resource')
  .filter((e) => e.name.endsWith('/GetPartialTranscript'))
  .map((e) => [e.encodedBodySize, e.duration])"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(web: str, token: str, media: Path) -> dict[str, object]:
    """Runs one job with its page open; the per-chunk latencies in seconds."""
    from playwright.async_api import async_playwright

    async with (
        async_playwright() as pw,
        ReelscribeClient(ADDRESS, token, timeout_s=600) as client,
    ):
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.add_init_script(OBSERVE)
        await page.goto(f"http://{web}/#token={token}")
        await page.wait_for_selector("#drop")
        uploaded = await client.upload(media)
        job = await client.create_job(
            media=uploaded.name, options=v1.JobOptions(model="tiny.en", skip_cache=True)
        )
        started = time.monotonic()
        await page.goto(f"http://{web}/#/{job.name}")
        events = [e async for e in client.watch(job.name)]
        took = time.monotonic() - started
        await page.wait_for_selector("#transcript .line", timeout=120_000)
        await page.wait_for_timeout(500)
        painted = await page.evaluate("() => window.__painted")
        calls = await page.evaluate(CALLS)
        await browser.close()
    done = await_state(events)
    partial = [e for e in events if e.kind == v1.JobEventKind.PARTIAL_RESULT]
    lines, log = [], []
    for e in partial:
        assert e.time is not None
        at_ms = e.time.timestamp() * 1000
        shown = painted["chunks"].get(str(e.chunk_index), -1)
        if shown > 0:
            lines.append((shown - at_ms) / 1000)
        logged = painted["events"].get(str(e.seq), -1)
        if logged > 0:
            log.append((logged - at_ms) / 1000)
    return {
        "state": done,
        "chunks": len(partial),
        "lines": lines,
        "log": log,
        "calls": calls,
        "took": took,
    }


def await_state(events: list[v1.JobEvent]) -> str:
    return events[-1].job.state.name if events and events[-1].job else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--chunk-s", type=float, default=20.0)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    lecture = make_lecture(OUT / f"partial-lecture-{args.minutes:g}min.ogg", args.minutes)
    secret = "bench-partial-" + "x" * 40
    web = f"127.0.0.1:{free_port()}"
    os.environ["REELSCRIBE_WEB_LISTEN"] = web
    env = {"REELSCRIBE_CHUNK_TARGET_S": f"{args.chunk_s:g}"}
    with bench_stack(ADDRESS, secret, workers=(cores, 1), extra_env=env) as (stack, _):
        wait_until_idle(stack.server.pid)
        token = mint_token(secret, "bench-partial")
        got = asyncio.run(measure(web, token, lecture))
    if got["state"] != "SUCCEEDED":
        raise SystemExit(f"the job ended {got['state']}")
    lines, log = got["lines"], got["log"]
    calls = got["calls"]
    assert isinstance(lines, list) and isinstance(log, list) and isinstance(calls, list)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = [
        (
            "job",
            f"{args.minutes:g} min lecture, tiny.en, chunks of about {args.chunk_s:g} s: "
            f"{got['chunks']} chunks, {got['took']:.0f} s from the page's open to the end",
        ),
        (
            "chunk finished -> its provisional lines painted",
            f"p50 {statistics.median(lines):.3f} s, max {max(lines):.3f} s "
            f"({len(lines)} of {got['chunks']} chunks shown before the merge)",
        ),
        (
            "baseline: chunk finished -> its event painted in the log",
            f"p50 {statistics.median(log):.3f} s, max {max(log):.3f} s ({len(log)} events)",
        ),
        (
            "GetPartialTranscript over gRPC-Web, as the browser timed it",
            f"{len(calls)} calls, median {statistics.median(c[1] for c in calls):.0f} ms, "
            f"median {statistics.median(c[0] for c in calls) / 1000:.1f} KB",
        ),
    ]
    for name, value in rows:
        print(f"{name:60} {value}")
    if args.record:
        record(
            "partial",
            title="Web console: the transcript growing chunk by chunk",
            command=(
                f"python -m bench.partial --minutes {args.minutes:g} --chunk-s {args.chunk_s:g}"
            ),
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings=(
                f"headless Chromium {CHROMIUM}, viewport 1280x900, {cores} worker processes "
                f"of one thread; load average at the end {load} (other work on the machine)"
            ),
            rows=rows,
        )


if __name__ == "__main__":
    main()
