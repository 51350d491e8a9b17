"""The web console: its bundle's size, and the first paint of a long job's page.

    .venv/bin/python -m bench.console [--minutes 60] [--loads 5] [--record]
    .venv/bin/python -m bench.console --bundle-only [--record]

Bundle: the files in `clients/web/dist` (as `make gen` builds them), raw and
gzipped (level 9, what a server would send compressed). Goal (issue 18):
<= 150 KB gzipped.

First paint: a `--minutes` lecture (bench.lecture, espeak-ng) transcribed
with tiny.en through the real stack (embedded Postgres and Valkey, server
with its gRPC-Web listener, Dramatiq workers), then its job page opened
`--loads` times in headless Chromium (Debian's, driven by Playwright), each a
fresh page load: the time from navigation start until the whole transcript
is in the page and painted (the animation frame after its last line is
attached). Goal (issue 18): <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
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
DIST = ROOT / "clients" / "web" / "dist"
OUT = ROOT / "bench" / "out"
ADDRESS = "127.0.0.1:50181"
CHROMIUM = "/usr/bin/chromium"
GOAL_KB = 150
GOAL_PAINT_S = 1.0

#: Waits in the page for the whole transcript, then for the frame that paints it.
PAINTED = """async (lines) => {
  while (document.querySelectorAll('#transcript .line').length < lines) {
    await new Promise(requestAnimationFrame);
  }
  await new Promise(requestAnimationFrame);
  await new Promise((r) => setTimeout(r, 0));
  return performance.now();
}"""


def bundle_rows() -> tuple[list[tuple[str, str]], float]:
    """One row per file of dist/ and the total; returns the gzipped total in KB."""
    rows, raw_total, gz_total = [], 0, 0
    for path in sorted(DIST.iterdir()):
        data = path.read_bytes()
        packed = len(gzip.compress(data, compresslevel=9, mtime=0))
        raw_total += len(data)
        gz_total += packed
        rows.append(
            (f"bundle: {path.name}", f"{len(data) / 1000:.1f} KB, {packed / 1000:.1f} KB gzipped")
        )
    kb = gz_total / 1000
    verdict = "met" if kb <= GOAL_KB else "NOT met"
    rows.append(
        (
            "bundle: total",
            f"{raw_total / 1000:.1f} KB, {kb:.1f} KB gzipped (goal <= {GOAL_KB} KB: {verdict})",
        )
    )
    return rows, kb


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def transcribe(token: str, media: Path) -> tuple[str, int, float]:
    """Uploads and transcribes `media` with tiny.en; the job, its lines and seconds."""
    async with ReelscribeClient(ADDRESS, token, timeout_s=600) as client:
        uploaded = await client.upload(media)
        job = await client.create_job(
            media=uploaded.name,
            options=v1.JobOptions(model="tiny.en"),
            labels={"title": media.name},
        )
        async for _ in client.watch(job.name):
            pass
        done = await client.get_job(job.name)
        if done.state != v1.JobState.SUCCEEDED:
            raise SystemExit(f"{job.name} ended {done.state.name}: {done.error.message}")
        transcript = await client.transcript(job.name)
        return job.name, len(transcript.segments), transcript.duration_seconds


#: The same load's baseline: the page shell's first contentful paint, and the
#: GetTranscript call (its bytes on the wire and its duration) as the browser timed it.
SHELL_AND_CALL = """() => {
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  const call = performance.getEntriesByType('resource')
    .find((e) => e.name.endsWith('/GetTranscript'));
  return [fcp ? fcp.startTime : -1, call ? call.encodedBodySize : -1, call ? call.duration : -1];
}"""


async def first_paints(
    web: str, token: str, job: str, lines: int, loads: int
) -> list[tuple[float, float, int, float]]:
    """Per fresh load: seconds to the painted transcript, to the shell's first
    paint, and the GetTranscript response's bytes and seconds."""
    from playwright.async_api import async_playwright

    times = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"http://{web}/#token={token}")
        await page.wait_for_selector("#drop")
        for _ in range(loads + 1):  # the first load warms the browser's cache
            await page.goto("about:blank")
            await page.goto(f"http://{web}/#/{job}")
            painted_ms = await page.evaluate(PAINTED, lines)
            shell_ms, call_bytes, call_ms = await page.evaluate(SHELL_AND_CALL)
            times.append((painted_ms / 1000, shell_ms / 1000, int(call_bytes), call_ms / 1000))
        await browser.close()
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--bundle-only", action="store_true")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows, _ = bundle_rows()
    settings_note = "dist/ as built by `make gen` (esbuild, minified)"
    if not args.bundle_only:
        lecture = make_lecture(OUT / f"console-lecture-{args.minutes:g}min.ogg", args.minutes)
        secret = "bench-console-" + "x" * 40
        web = f"127.0.0.1:{free_port()}"
        os.environ["REELSCRIBE_WEB_LISTEN"] = web
        with bench_stack(ADDRESS, secret, workers=(cores, 1)) as (stack, _):
            wait_until_idle(stack.server.pid)
            token = mint_token(secret, "bench-console")
            started = time.monotonic()
            job, lines, seconds = asyncio.run(transcribe(token, lecture))
            took = time.monotonic() - started
            paints = asyncio.run(first_paints(web, token, job, lines, args.loads))
        painted = [p[0] for p in paints]
        median = statistics.median(painted)
        verdict = "met" if max(painted) <= GOAL_PAINT_S else "NOT met"
        rows += [
            (
                "job page: transcript",
                f"{seconds / 60:.1f} min of audio, {lines} lines "
                f"(tiny.en, {took:.0f} s to transcribe)",
            ),
            (
                f"job page: first paint of the whole transcript, {len(paints)} fresh loads",
                f"median {median:.2f} s, max {max(painted):.2f} s "
                f"(goal <= {GOAL_PAINT_S:g} s: {verdict})",
            ),
            (
                "job page (baseline, same loads): first paint of the page shell",
                f"median {statistics.median(p[1] for p in paints):.2f} s",
            ),
            (
                "job page: GetTranscript over gRPC-Web (with word timings)",
                f"{paints[0][2] / 1e6:.2f} MB, "
                f"median {statistics.median(p[3] for p in paints):.2f} s",
            ),
        ]
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        settings_note += (
            f"; headless Chromium {CHROMIUM}, viewport 1280x900, {cores} worker processes; "
            f"load average at the end {load} (other work on the machine)"
        )
    for name, value in rows:
        print(f"{name:60} {value}")
    if args.record:
        record(
            "console",
            title="Web console: bundle size and first paint of a long job page",
            command="python -m bench.console"
            + (" --bundle-only" if args.bundle_only else f" --minutes {args.minutes:g}"),
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings=settings_note,
            rows=rows,
        )


if __name__ == "__main__":
    main()
