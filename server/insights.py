"""Insights for the read RPCs: stored by a job's stages, or computed on demand and cached.

A job's summaries and chapters come from its ANALYZE stage when it ran; for
any other finished transcript they are computed on the first read with the
configured provider and cached for `analysis_cache_ttl_s` per (transcript,
provider). Highlights likewise (without clips: clips need a RENDER_CLIPS job).
Answers to questions are cached in Redis for `answer_cache_ttl_s`.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import asyncpg
import structlog

from reelscribe import costs, insights, names
from reelscribe.blobs import owner_prefix
from reelscribe.db import chunks as chunks_db
from reelscribe.db import insights as insights_db
from reelscribe.db import transcripts as transcripts_db
from reelscribe.errors import FailedPrecondition, Unavailable
from reelscribe.insights import Analysis, Answer, Provider, ProviderError, Seg, Summary, engine
from reelscribe.insights.engine import Transcript
from reelscribe.options import JobOptions
from reelscribe.states import Stage
from server.deps import Deps

log = structlog.get_logger(__name__)

T = TypeVar("T")


class Insights:
    """Reads (and lazily computes) analyses, highlights and answers."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._settled = False

    @property
    def provider(self) -> Provider:
        """The configured analysis provider."""
        try:
            return insights.get_provider(self._deps.settings)
        except ValueError as exc:
            raise FailedPrecondition(str(exc), reason="PROVIDER_NOT_CONFIGURED") from exc

    async def _provider(self) -> Provider:
        """`provider`, built off the event loop: the local provider loads the
        search model on first use (seconds), which must not stall other calls."""
        provider = await asyncio.to_thread(lambda: self.provider)
        if not self._settled:
            # The model's objects live as long as the process: keep the cycle
            # collector from walking them again (as `server.app` does at start).
            self._settled = True
            gc.freeze()
        return provider

    async def transcript(self, conn: asyncpg.Connection, job: asyncpg.Record) -> Transcript:
        """The job's transcript (without words); FAILED_PRECONDITION until there is one."""
        found = await transcripts_db.get_transcript(conn, job["id"], with_words=False)
        if found is None:
            raise FailedPrecondition(
                f"{names.job_name(job['id'])} is {job['state']}; analysis needs its transcript",
                reason="TRANSCRIPT_NOT_READY",
            )
        row, segments, _ = found
        return Transcript.from_rows(row, segments)

    async def analysis(self, job: asyncpg.Record) -> tuple[str, Analysis]:
        """(provider name, analysis) of the job's transcript."""
        settings = self._deps.settings
        async with self._deps.pool.acquire() as conn:
            stored = await insights_db.get_any(conn, job["id"], insights_db.ANALYSIS)
            if stored is not None:
                return stored[0], insights_db.analysis_from_json(stored[1])
            provider = await self._provider()
            cached = await insights_db.find_for_transcript(
                conn,
                job["id"],
                insights_db.ANALYSIS,
                provider.name,
                settings.analysis_cache_ttl_s,
            )
            if cached is not None:
                return provider.name, insights_db.analysis_from_json(cached)
            segs = (await self.transcript(conn, job)).segments
        result, cpu_s = await self._run(lambda: engine.analyze(provider, segs))
        async with self._deps.pool.acquire() as conn:
            await insights_db.put(
                conn,
                job["id"],
                insights_db.ANALYSIS,
                provider.name,
                insights_db.analysis_to_json(result),
                tokens=result.usage.total,
                ttl_s=settings.analysis_cache_ttl_s,
            )
            await self._charge(conn, job, Stage.ANALYZE, cpu_s, result.usage.total)
        return provider.name, result

    async def highlights(self, job: asyncpg.Record) -> list[asyncpg.Record]:
        """The job's highlights; chosen now (without clips) if no stage chose them."""
        async with self._deps.pool.acquire() as conn:
            rows = await insights_db.list_highlights(conn, job["id"])
        if rows:
            return rows
        _, result = await self.analysis(job)
        async with self._deps.pool.acquire() as conn:
            transcript = await self.transcript(conn, job)
        regions = await chunks_db.load_regions(self._deps.pool, job["id"])
        plans = engine.choose_highlights(
            transcript, result, regions, JobOptions.from_json(job["options"]), self._deps.settings
        )
        async with self._deps.pool.acquire() as conn, conn.transaction():
            # Another reader may have chosen them meanwhile: keep the first.
            if not await insights_db.list_highlights(conn, job["id"]):
                await insights_db.replace_highlights(conn, job["id"], plans)
            return await insights_db.list_highlights(conn, job["id"])

    async def answer(self, question: str, passages: list[Seg]) -> tuple[str, Answer]:
        """The provider's answer from the retrieved passages."""
        provider = await self._provider()
        result, _ = await self._run(lambda: engine.answer(provider, question, passages))
        return provider.name, result

    def answer_cache_key(
        self, owner: str, question: str, job_id: uuid.UUID | None, generation: str
    ) -> str:
        """Redis key of a cached answer (owner-scoped; the question is hashed).

        `generation` is the owner's library generation (`reelscribe.library`):
        answers cached before a job was indexed or deleted are never read again.
        """
        provider = insights.provider_name(self._deps.settings)
        # The threshold decides between an answer and "not answered": a changed
        # threshold (or answers cached before it existed) must not be read back.
        threshold = self._deps.settings.answer_min_similarity
        digest = hashlib.sha256(
            f"{provider}\0{threshold}\0{generation}\0{job_id or ''}\0{question}".encode()
        ).hexdigest()
        return f"reelscribe:answer:{owner_prefix(owner)}:{digest}"

    async def _run(self, work: Callable[[], T]) -> tuple[T, float]:
        """Run a blocking provider call in a thread; map provider errors to statuses."""

        def _timed() -> tuple[T, float]:
            start = time.thread_time()
            return work(), time.thread_time() - start

        try:
            return await asyncio.to_thread(_timed)
        except insights.CannotTranslate as exc:
            raise FailedPrecondition(exc.message, reason=exc.reason) from exc
        except ProviderError as exc:
            if exc.reason == "PROVIDER_REJECTED":
                raise FailedPrecondition(exc.message, reason=exc.reason) from exc
            raise Unavailable(f"analysis provider: {exc.message}", reason=exc.reason) from exc

    async def _charge(
        self,
        conn: asyncpg.Connection,
        job: asyncpg.Record,
        stage: Stage,
        cpu_s: float,
        tokens: int,
    ) -> None:
        await costs.charge(
            conn,
            self._deps.settings,
            job["id"],
            stage,
            job["owner"],
            cpu_seconds=cpu_s,
            tokens=tokens,
            add=True,
        )


def summary_of(result: Analysis, fmt: str) -> Summary:
    """The summary in `fmt` (short, bullets, detailed)."""
    for s in result.summaries:
        if s.format == fmt:
            return s
    return Summary(fmt, "")
