"""The daily cost alert: today's estimated cost against yesterday's.

Once per `cost_alert_check_s` (one worker process at a time, by a Redis
lock) the totals of today and yesterday (UTC, all users) are compared. When
today's exceeds yesterday's by more than `cost_alert_increase_percent`, a
warning is logged and `reelscribe_cost_alerts_total` counts it: once per
day, however many workers check.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from reelscribe.costs import increase_percent
from reelscribe.db import costs as costs_db
from reelscribe.metrics import COST_ALERTS, DAILY_COST_INCREASE
from workers.periodic import Periodic
from workers.runtime import Runtime

log = structlog.get_logger(__name__)

_LOCK_KEY = "reelscribe:cost-alert:lock"
_ALERTED_KEY = "reelscribe:cost-alert:{day}"


async def check_once(rt: Runtime) -> float | None:
    """Compare today with yesterday; returns the increase in percent (None without a base)."""
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    async with rt.pool.acquire() as conn:
        rows = await costs_db.daily_costs(
            conn,
            None,
            yesterday,
            today,
            per_audio_minute_usd=rt.settings.price_per_audio_minute_usd,
        )
    totals = {r["day"]: float(r["cost_usd"]) for r in rows}
    increase = increase_percent(totals.get(today, 0.0), totals.get(yesterday, 0.0))
    if increase is None:
        return None
    DAILY_COST_INCREASE.set(increase)
    threshold = rt.settings.cost_alert_increase_percent
    if increase > threshold and await rt.redis.set(
        _ALERTED_KEY.format(day=today.isoformat()), "1", nx=True, ex=2 * 86400
    ):
        COST_ALERTS.inc()
        log.warning(
            "daily cost alert",
            day=today.isoformat(),
            today_usd=round(totals[today], 6),
            yesterday_usd=round(totals[yesterday], 6),
            increase_percent=round(increase, 1),
            threshold_percent=threshold,
        )
    return increase


class CostWatch(Periodic):
    """Runs `check_once` periodically (one process per interval)."""

    name = "cost-watch"

    def interval_s(self, rt: Runtime) -> float:
        return rt.settings.cost_alert_check_s

    def tick(self, rt: Runtime) -> None:
        async def _run() -> None:
            if await rt.redis.set(_LOCK_KEY, "1", nx=True, px=int(self.interval_s(rt) * 900)):
                await check_once(rt)

        rt.call(_run())
