"""Cost accounting: the price table and the daily cost alert against the real stack."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from reelscribe.config import Settings
from reelscribe.costs import PriceTable, increase_percent
from reelscribe.metrics import COST_ALERTS, DAILY_COST_INCREASE
from server.app import ServerApp
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


async def test_daily_cost_alert_fires_once_per_day(runtime: Runtime) -> None:
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    jobs = [uuid.uuid4(), uuid.uuid4()]

    async def setup() -> None:
        async with runtime.pool.acquire() as conn:
            # Large enough to dominate what other tests spend today.
            await conn.executemany(
                "INSERT INTO job_costs (job_id, stage, owner, day, cost_usd)"
                " VALUES ($1, 'MERGE', 'cost-alert-test', $2, $3)",
                [(jobs[0], yesterday, 1000.0), (jobs[1], today, 1500.0)],
            )
        await runtime.redis.delete(f"reelscribe:cost-alert:{today.isoformat()}")

    async def cleanup() -> None:
        async with runtime.pool.acquire() as conn:
            await conn.execute("DELETE FROM job_costs WHERE job_id = ANY($1::uuid[])", jobs)

    def run(coro: object) -> object:
        return runtime.call(coro)  # type: ignore[arg-type]

    await asyncio.to_thread(run, setup())
    try:
        before = COST_ALERTS._value.get()
        increase = await asyncio.to_thread(run, costwatch.check_once(runtime))
        assert increase == pytest.approx(50.0, abs=1.0)
        assert DAILY_COST_INCREASE._value.get() == pytest.approx(increase)
        assert COST_ALERTS._value.get() == before + 1
        # Checked again the same day (by this or any other worker): no second alert.
        await asyncio.to_thread(run, costwatch.check_once(runtime))
        assert COST_ALERTS._value.get() == before + 1
    finally:
        await asyncio.to_thread(run, cleanup())


async def test_no_alert_below_the_threshold(runtime: Runtime) -> None:
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    jobs = [uuid.uuid4(), uuid.uuid4()]

    async def setup() -> None:
        async with runtime.pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO job_costs (job_id, stage, owner, day, cost_usd)"
                " VALUES ($1, 'MERGE', 'cost-alert-test', $2, $3)",
                [(jobs[0], yesterday, 100000.0), (jobs[1], today, 110000.0)],
            )
        await runtime.redis.delete(f"reelscribe:cost-alert:{today.isoformat()}")

    async def cleanup() -> None:
        async with runtime.pool.acquire() as conn:
            await conn.execute("DELETE FROM job_costs WHERE job_id = ANY($1::uuid[])", jobs)

    await asyncio.to_thread(runtime.call, setup())
    try:
        before = COST_ALERTS._value.get()
        increase = await asyncio.to_thread(runtime.call, costwatch.check_once(runtime))
        assert increase == pytest.approx(10.0, abs=1.0)
        assert COST_ALERTS._value.get() == before
    finally:
        await asyncio.to_thread(runtime.call, cleanup())
