"""SearchService: the caller's whole library, by words and by meaning."""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import uuid
from collections.abc import Sequence

import asyncpg
import grpc
import numpy as np
import numpy.typing as npt

from reelscribe import embeddings, names, validation
from reelscribe.db import search as search_db
from reelscribe.db import speakers as speakers_db
from reelscribe.errors import FieldViolation, InvalidArgument
from reelscribe.v1 import search_service_pb2 as spb
from reelscribe.v1 import search_service_pb2_grpc
from server.context import current_principal
from server.deps import Deps

#: Candidates taken from each signal before fusing.
CANDIDATES = 50
#: Reciprocal rank fusion constant (the usual 60).
RRF_K = 60
#: In hybrid mode a keyword hit must match more than half of the query's terms
#: (a "minimum should match"): a passage sharing one common word with a long
#: paraphrased question is no evidence, and fusing it pushes the semantic
#: answer down.
HYBRID_MIN_COVERAGE = 0.51
MAX_PAGE_SIZE = 100
MAX_OFFSET = 500


class SearchService(search_service_pb2_grpc.SearchServiceServicer):
    """Implements `reelscribe.v1.SearchService`."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def _embed(self, text: str) -> npt.NDArray[np.float32]:
        settings = self._deps.settings
        loaded = embeddings.is_loaded(settings)
        vector = embeddings.get_embedder(settings).embed([text])[0]
        if not loaded:
            # The model's Python objects live as long as the process: keep the
            # cycle collector from walking them again (see `server.app`).
            gc.freeze()
        return vector

    async def warm_up(self) -> None:
        """Load the embedding model in the background so the first query is fast."""
        await asyncio.to_thread(self._embed, "warm up")

    async def Search(
        self, request: spb.SearchRequest, context: grpc.aio.ServicerContext
    ) -> spb.SearchResponse:
        query = request.query.strip()
        limit = self._deps.settings.max_query_chars
        violations: list[FieldViolation] = []
        if not query:
            violations.append(FieldViolation("query", "must not be empty"))
        elif len(query) > limit:
            violations.append(FieldViolation("query", f"at most {limit} characters"))
        if request.page_size < 0 or request.page_size > MAX_PAGE_SIZE:
            violations.append(FieldViolation("page_size", f"0-{MAX_PAGE_SIZE}"))
        violations += validation.language(request.language, "language")
        validation.check(violations)
        job_ids = [names.parse_job_name(n, "jobs") for n in request.jobs]
        filters = search_db.Filters(
            owner=current_principal().subject,
            job_ids=job_ids,
            language=request.language,
            created_after=(
                validation.timestamp(request.create_time_min, "create_time_min")
                if request.HasField("create_time_min")
                else None
            ),
            created_before=(
                validation.timestamp(request.create_time_max, "create_time_max")
                if request.HasField("create_time_max")
                else None
            ),
        )
        mode = request.mode or spb.SEARCH_MODE_HYBRID
        size = request.page_size or 10
        fingerprint = _fingerprint(request)
        offset = _decode_token(request.page_token, fingerprint)
        wanted = offset + size + 1

        async with self._deps.pool.acquire() as conn:
            hits = await self.retrieve(
                conn, query, filters, mode, wanted, headline_from=offset, headline_count=size
            )
            hits = [h for h in hits if h.score >= request.min_score]
            page = hits[offset : offset + size]
            if mode == spb.SEARCH_MODE_KEYWORD:
                snippets = [h.headline or h.text for h in page]
            else:
                snippets = await search_db.headlines(conn, query, [h.text for h in page])
            speakers = await speakers_db.dominant_names(
                conn, [(h.job_id, h.start_s, h.end_s) for h in page]
            )
        reply = spb.SearchResponse(
            hits=[
                spb.SearchHit(
                    job=names.job_name(h.job_id),
                    start_seconds=h.start_s,
                    end_seconds=h.end_s,
                    snippet=snippet,
                    score=h.score,
                    keyword_score=h.keyword,
                    semantic_score=h.semantic,
                    speaker=speaker,
                )
                for h, snippet, speaker in zip(page, snippets, speakers, strict=True)
            ]
        )
        if len(hits) > offset + size and offset + size <= MAX_OFFSET:
            reply.next_page_token = _encode_token(offset + size, fingerprint)
        return reply

    async def retrieve(
        self,
        conn: asyncpg.Connection,
        query: str,
        filters: search_db.Filters,
        mode: int,
        wanted: int,
        *,
        headline_from: int = 0,
        headline_count: int = 0,
    ) -> list[Hit]:
        """Passages matching `query`, best first, for one of the search modes."""
        keyword_rows: list[asyncpg.Record] = []
        semantic_rows: list[asyncpg.Record] = []
        embedding: asyncio.Future[npt.NDArray[np.float32]] | None = None
        if mode in (spb.SEARCH_MODE_HYBRID, spb.SEARCH_MODE_SEMANTIC):
            # Embed the query in a thread while Postgres runs the keyword query.
            embedding = asyncio.ensure_future(asyncio.to_thread(self._embed, query))
        try:
            if mode == spb.SEARCH_MODE_KEYWORD:
                # Keyword only: just the rows needed, snippets in the same query.
                keyword_rows = await search_db.keyword(
                    conn,
                    query,
                    filters,
                    wanted,
                    headline_from=headline_from,
                    headline_count=headline_count,
                )
            elif mode == spb.SEARCH_MODE_HYBRID:
                keyword_rows = await search_db.keyword(
                    conn, query, filters, max(wanted, CANDIDATES), min_coverage=HYBRID_MIN_COVERAGE
                )
            if embedding is not None:
                vector = await embedding
                semantic_rows = await search_db.semantic(
                    conn, vector, filters, max(wanted, CANDIDATES)
                )
        except BaseException:
            if embedding is not None:
                embedding.cancel()  # its result is no longer wanted
            raise
        return _rank(mode, keyword_rows, semantic_rows)


class Hit:
    """One ranked passage with its per-signal scores."""

    __slots__ = ("end_s", "headline", "job_id", "keyword", "score", "semantic", "start_s", "text")

    def __init__(self, row: object) -> None:
        self.job_id: uuid.UUID = row["job_id"]  # type: ignore[index]
        self.start_s: float = row["start_s"]  # type: ignore[index]
        self.end_s: float = row["end_s"]  # type: ignore[index]
        self.text: str = row["text"]  # type: ignore[index]
        self.headline: str | None = dict(row).get("headline")  # type: ignore[call-overload]
        self.keyword = 0.0
        self.semantic = 0.0
        self.score = 0.0


def _rank(mode: int, keyword_rows: Sequence[object], semantic_rows: Sequence[object]) -> list[Hit]:
    """Hits best first, each `score` on 0..1 (see `normalised`); ranking uses the raw value."""
    hits: dict[tuple[object, object], Hit] = {}
    raw: dict[tuple[object, object], float] = {}
    for signal, rows in (("keyword", keyword_rows), ("semantic", semantic_rows)):
        for rank, row in enumerate(rows, start=1):
            key = (row["job_id"], row["idx"])  # type: ignore[index]
            hit = hits.setdefault(key, Hit(row))
            setattr(hit, signal, float(row["score"]))  # type: ignore[index]
            if mode == spb.SEARCH_MODE_HYBRID:
                raw[key] = raw.get(key, 0.0) + 1.0 / (RRF_K + rank)
            else:
                raw[key] = float(row["score"])  # type: ignore[index]
    for key, hit in hits.items():
        hit.score = normalised(mode, raw[key])
    order = sorted(hits, key=lambda k: (-raw[k], hits[k].start_s))
    return [hits[k] for k in order]


def normalised(mode: int, raw: float) -> float:
    """A hit's score on 0..1, the scale `min_score` filters on.

    HYBRID: reciprocal rank fusion divided by its largest possible value (first
    in both signals), so 1 is first by words and by meaning and 0.5 first in
    one signal only. SEMANTIC: the cosine similarity, below 0 read as 0.
    KEYWORD: `ts_rank_cd` mapped by r / (1 + r). Each is monotonic in the raw
    value, so the ranking is the raw ranking.
    """
    if mode == spb.SEARCH_MODE_HYBRID:
        return min(1.0, raw / (2.0 / (RRF_K + 1)))
    if mode == spb.SEARCH_MODE_KEYWORD:
        return raw / (1.0 + raw) if raw > 0 else 0.0
    return min(1.0, max(0.0, raw))


def _fingerprint(request: spb.SearchRequest) -> str:
    copy = spb.SearchRequest()
    copy.CopyFrom(request)
    copy.page_token = ""
    copy.page_size = 0
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()[:16]


def _encode_token(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{fingerprint}".encode()).decode()


def _decode_token(token: str, fingerprint: str) -> int:
    if not token:
        return 0
    try:
        offset_text, got = base64.urlsafe_b64decode(token.encode()).decode().split(":")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument.field("page_token", "malformed page token") from exc
    offset = validation.ascii_int(offset_text, "page_token", maximum=MAX_OFFSET)
    if got != fingerprint:
        raise InvalidArgument.field("page_token", "page token belongs to a different search")
    return offset
