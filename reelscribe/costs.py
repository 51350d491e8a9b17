"""Cost accounting: what a stage consumed, priced by a configurable table."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from types import TracebackType

import asyncpg

from reelscribe.config import Settings
from reelscribe.db import costs as costs_db
from reelscribe.metrics import COST_USD


@dataclass(frozen=True)
class PriceTable:
    """US dollars per unit of each resource."""

    per_audio_minute_usd: float
    per_cpu_hour_usd: float
    per_1k_tokens_usd: float

    @classmethod
    def from_settings(cls, settings: Settings) -> PriceTable:
        """The table configured by `REELSCRIBE_PRICE_*`."""
        return cls(
            settings.price_per_audio_minute_usd,
            settings.price_per_cpu_hour_usd,
            settings.price_per_1k_provider_tokens_usd,
        )

    def cost_usd(
        self, *, audio_minutes: float = 0.0, cpu_seconds: float = 0.0, tokens: int = 0
    ) -> float:
        """The estimated cost of these amounts."""
        return (
            audio_minutes * self.per_audio_minute_usd
            + cpu_seconds / 3600.0 * self.per_cpu_hour_usd
            + tokens / 1000.0 * self.per_1k_tokens_usd
        )


class CpuMeter:
    """CPU seconds of this process while the block runs.

    Process time, not thread time: the speech model computes in threads of
    its own. Exact with one worker thread per process (the default); with
    more threads concurrent stages share the count, so it is an upper bound.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> CpuMeter:
        self._start = time.process_time()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.seconds = time.process_time() - self._start


def increase_percent(today_usd: float, yesterday_usd: float) -> float | None:
    """How much today's cost exceeds yesterday's, in percent; None without a base."""
    if yesterday_usd <= 0:
        return None
    return (today_usd / yesterday_usd - 1.0) * 100.0


async def charge(
    conn: asyncpg.Connection,
    settings: Settings,
    job_id: uuid.UUID,
    stage: str,
    owner: str,
    *,
    cpu_seconds: float = 0.0,
    tokens: int = 0,
    add: bool = False,
) -> None:
    """Price what a stage consumed and record it (and count it in the cost metric).

    With `add` the amounts add up (chunks, reads that analyse on demand);
    otherwise they replace the stage's row, so a retried stage is counted once.
    Audio minutes are not a stage's: the usage ledger (`reelscribe.db.usage`)
    holds them, and the cost report prices them from there.
    """
    cost = PriceTable.from_settings(settings).cost_usd(cpu_seconds=cpu_seconds, tokens=tokens)
    if add:
        await costs_db.add_cost(
            conn, job_id, stage, owner, cpu_seconds=cpu_seconds, tokens=tokens, cost_usd=cost
        )
    else:
        await costs_db.record_cost(
            conn,
            job_id,
            stage,
            owner,
            cpu_seconds=cpu_seconds,
            tokens=tokens,
            cost_usd=cost,
        )
    COST_USD.labels(stage).inc(cost)
