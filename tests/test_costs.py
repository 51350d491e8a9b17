"""Cost accounting: the price table and the daily cost alert against the real stack."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from reelscribe import names, queue
from reelscribe.config import Settings
from reelscribe.costs import PriceTable, increase_percent
from reelscribe.db import chunks as chunks_db
from reelscribe.metrics import COST_ALERTS, DAILY_COST_INCREASE
from reelscribe.speech import Region
from reelscribe.v1 import job_pb2
from server.app import ServerApp
from tests.support.api import Api
from tests.support.media import MEDIA_DIR
from workers import costwatch
from workers.runtime import Runtime


def test_price_table_adds_each_resource() -> None:
    prices = PriceTable(per_audio_minute_usd=0.006, per_cpu_hour_usd=0.36, per_1k_tokens_usd=0.5)
    assert prices.cost_usd(audio_minutes=10) == pytest.approx(0.06)
    assert prices.cost_usd(cpu_seconds=10) == pytest.approx(0.001)
    assert prices.cost_usd(tokens=2000) == pytest.approx(1.0)
    assert prices.cost_usd(audio_minutes=10, cpu_seconds=10, tokens=2000) == pytest.approx(1.061)


def test_increase_percent() -> None:
    assert increase_percent(12.0, 10.0) == pytest.approx(20.0)
    assert increase_percent(5.0, 10.0) == pytest.approx(-50.0)
    assert increase_percent(5.0, 0.0) is None


@pytest.fixture
def runtime(settings: Settings, server: ServerApp) -> Iterator[Runtime]:
    """A worker's runtime on the test stack (the server has applied the migrations)."""
    rt = Runtime(settings.model_copy(update={"cost_alert_increase_percent": 20.0}))
    yield rt
    rt.close()


@pytest.fixture
def daily_totals(runtime: Runtime) -> Iterator[Callable[[float, float], None]]:
    """Set yesterday's and today's totals (large enough to dominate what other
    tests spend today) and forget any alert already raised today."""
    today = datetime.now(UTC).date()
    jobs = [uuid.uuid4(), uuid.uuid4()]

    async def setup(yesterday_usd: float, today_usd: float) -> None:
        async with runtime.pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO job_costs (job_id, stage, owner, day, cost_usd)"
                " VALUES ($1, 'MERGE', 'cost-alert-test', $2, $3)",
                [
                    (jobs[0], today - timedelta(days=1), yesterday_usd),
                    (jobs[1], today, today_usd),
                ],
            )
        await runtime.redis.delete(f"reelscribe:cost-alert:{today.isoformat()}")

    async def cleanup() -> None:
        async with runtime.pool.acquire() as conn:
            await conn.execute("DELETE FROM job_costs WHERE job_id = ANY($1::uuid[])", jobs)

    yield lambda yesterday_usd, today_usd: runtime.call(setup(yesterday_usd, today_usd))
    runtime.call(cleanup())


async def check(runtime: Runtime) -> float | None:
    return await asyncio.to_thread(runtime.call, costwatch.check_once(runtime))


async def test_daily_cost_alert_fires_once_per_day(
    runtime: Runtime, daily_totals: Callable[[float, float], None]
) -> None:
    await asyncio.to_thread(daily_totals, 1000.0, 1500.0)
    before = COST_ALERTS._value.get()
    increase = await check(runtime)
    assert increase == pytest.approx(50.0, abs=1.0)
    assert DAILY_COST_INCREASE._value.get() == pytest.approx(increase)
    assert COST_ALERTS._value.get() == before + 1
    # Checked again the same day (by this or any other worker): no second alert.
    await check(runtime)
    assert COST_ALERTS._value.get() == before + 1


async def test_no_alert_below_the_threshold(
    runtime: Runtime, daily_totals: Callable[[float, float], None]
) -> None:
    await asyncio.to_thread(daily_totals, 100000.0, 110000.0)
    before = COST_ALERTS._value.get()
    assert await check(runtime) == pytest.approx(10.0, abs=1.0)
    assert COST_ALERTS._value.get() == before


async def test_a_prepare_resumed_after_planning_still_prices_its_stage(
    api: Api, user: str, server: ServerApp
) -> None:
    """A prepare killed between storing its plan and pricing its work is resumed
    from the plan; the resumed run prices EXTRACT_AUDIO, so no stage goes unbilled."""
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    job_id = uuid.uuid4()
    async with server.deps.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO jobs (id, owner, request_hash, media_id, options, state, stage, message)"
            " VALUES ($1, $2, '', $3, $4::text::jsonb, 'QUEUED', 'QUEUED', 'queued')",
            job_id,
            user,
            names.parse_media_name(media.name),
            json.dumps({"language": "en"}),
        )
    # What the killed run left behind: the plan, and no price.
    await chunks_db.replace_plan(server.deps.pool, job_id, [Region(0.0, 4.0, True)], [(0.0, 4.0)])
    jq = server.deps.queue
    jq.enqueue_sync(jq.message(queue.PREPARE_JOB, job_id))
    name = names.job_name(job_id)
    events = await api.watch(name)
    assert events[-1].job.state == job_pb2.JOB_STATE_SUCCEEDED, events[-1].job.error
    assert any("resuming" in e.job.message for e in events), [e.job.message for e in events]
    async with server.deps.pool.acquire() as conn:
        stages = await conn.fetch(
            "SELECT stage, cpu_seconds FROM job_costs WHERE job_id = $1", job_id
        )
    priced = {r["stage"]: r["cpu_seconds"] for r in stages}
    assert priced.keys() >= {"EXTRACT_AUDIO", "TRANSCRIBE", "MERGE"}, priced
    assert priced["EXTRACT_AUDIO"] > 0
