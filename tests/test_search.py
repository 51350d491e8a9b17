"""Library search against the real stack: ranking, filters, paging, isolation, re-indexing."""

from __future__ import annotations

import grpc
import pytest

from reelscribe.v1 import job_pb2, job_service_pb2, search_service_pb2, transcript_service_pb2
from server.services.search import RRF_K, _rank
from tests.support.api import Api, error_details
from tests.support.media import LECTURE, MEDIA_DIR
from tests.support.processes import CLI, client_env
from tests.support.tokens import token_for

S = search_service_pb2


async def _search(api: Api, query: str, **kwargs: object) -> S.SearchResponse:
    return await api.search.Search(
        S.SearchRequest(query=query, **kwargs),  # type: ignore[arg-type]
        metadata=api.metadata,
        timeout=30,
    )


@pytest.fixture
async def library(api: Api) -> dict[str, str]:
    jobs = {}
    for name in ("ocean", "volcano"):
        job = await api.run(MEDIA_DIR / f"{name}.ogg", skip_cache=True)
        assert job.state == job_pb2.JOB_STATE_SUCCEEDED
        jobs[name] = job.name
    lecture = await api.run(LECTURE, skip_cache=True)
    jobs["lecture"] = lecture.name
    return jobs


async def test_keyword_semantic_and_hybrid_find_the_right_moment(
    api: Api, library: dict[str, str]
) -> None:
    kw = await _search(api, "eruption ash", mode=S.SEARCH_MODE_KEYWORD)
    assert kw.hits and kw.hits[0].job == library["volcano"]
    assert "[eruption]" in kw.hits[0].snippet.lower() or "[ash]" in kw.hits[0].snippet.lower()
    assert kw.hits[0].keyword_score > 0 and kw.hits[0].end_seconds > kw.hits[0].start_seconds
    # No shared keyword: only meaning connects the question and the answer.
    sem = await _search(
        api, "hot liquid stone coming out of mountains", mode=S.SEARCH_MODE_SEMANTIC
    )
    assert sem.hits[0].job == library["volcano"] and sem.hits[0].semantic_score > 0.2
    hybrid = await _search(api, "green pigment in leaves")
    assert hybrid.hits[0].job == library["lecture"]
    assert hybrid.hits[0].keyword_score > 0 and hybrid.hits[0].semantic_score > 0


async def test_filters_paging_and_isolation(
    api: Api, other_api: Api, library: dict[str, str]
) -> None:
    only_ocean = await _search(api, "water", jobs=[library["ocean"]])
    assert only_ocean.hits and {h.job for h in only_ocean.hits} == {library["ocean"]}
    first = await _search(api, "the", page_size=2, mode=S.SEARCH_MODE_SEMANTIC)
    assert len(first.hits) == 2 and first.next_page_token
    second = await _search(
        api, "the", page_size=2, mode=S.SEARCH_MODE_SEMANTIC, page_token=first.next_page_token
    )
    seen = {(h.job, h.start_seconds, h.end_seconds) for h in first.hits}
    assert not seen & {(h.job, h.start_seconds, h.end_seconds) for h in second.hits}
    assert (await _search(api, "water", language="fr")).hits == []
    high = await _search(api, "volcano", mode=S.SEARCH_MODE_SEMANTIC, min_score=0.99)
    assert all(h.score >= 0.99 for h in high.hits)
    # Another user's search never sees this library.
    assert (await _search(other_api, "eruption ash volcano ocean")).hits == []


def test_fused_scores_are_normalised_without_changing_the_ranking() -> None:
    def row(idx: int, score: float) -> dict[str, object]:
        return {
            "job_id": "j",
            "idx": idx,
            "start_s": float(idx),
            "end_s": idx + 1.0,
            "text": f"passage {idx}",
            "score": score,
        }

    keyword = [row(0, 0.5), row(1, 0.4), row(2, 0.1)]
    semantic = [row(1, 0.8), row(3, 0.7), row(0, 0.6)]
    hybrid = _rank(S.SEARCH_MODE_HYBRID, keyword, semantic)
    raw = {
        0: 1 / (RRF_K + 1) + 1 / (RRF_K + 3),
        1: 1 / (RRF_K + 2) + 1 / (RRF_K + 1),
        2: 1 / (RRF_K + 3),
        3: 1 / (RRF_K + 2),
    }
    # Ranked by reciprocal rank fusion as before; the score is it over its maximum, 2/61.
    assert [int(h.start_s) for h in hybrid] == sorted(raw, key=lambda i: -raw[i])
    for h in hybrid:
        assert h.score == pytest.approx(raw[int(h.start_s)] / (2 / (RRF_K + 1)))
    assert _rank(S.SEARCH_MODE_HYBRID, [row(7, 1.0)], [row(7, 0.9)])[0].score == 1.0
    assert _rank(S.SEARCH_MODE_HYBRID, [], [row(7, 0.9)])[0].score == 0.5
    # Each signal keeps its own score.
    assert (hybrid[0].keyword, hybrid[0].semantic) == (0.4, 0.8)
    # Semantic: cosine, negatives read as 0; keyword: ts_rank_cd r as r / (1 + r).
    sem = _rank(S.SEARCH_MODE_SEMANTIC, [], [row(0, 0.6), row(1, -0.2)])
    assert [h.score for h in sem] == [0.6, 0.0] and sem[1].semantic == -0.2
    kw = _rank(S.SEARCH_MODE_KEYWORD, [row(0, 3.0), row(1, 0.25)], [])
    assert [h.score for h in kw] == [0.75, 0.2] and kw[0].keyword == 3.0


async def test_min_score_filters_on_the_zero_to_one_scale(
    api: Api, library: dict[str, str]
) -> None:
    everything = (await _search(api, "green pigment in leaves", page_size=50)).hits
    assert everything[0].job == library["lecture"]
    assert all(0.0 <= h.score <= 1.0 for h in everything)
    # First by both signals: the top of the scale, not 2/61 ≈ 0.033.
    assert everything[0].score > 0.9
    kept = (await _search(api, "green pigment in leaves", page_size=50, min_score=0.5)).hits
    assert 0 < len(kept) < len(everything)
    assert list(kept) == [h for h in everything if h.score >= 0.5]  # same order, same hits
    assert (await _search(api, "green pigment in leaves", min_score=1.01)).hits == []


async def test_deleting_a_job_removes_it_from_the_index(api: Api, library: dict[str, str]) -> None:
    await api.jobs.DeleteJob(
        job_service_pb2.DeleteJobRequest(name=library["volcano"]), metadata=api.metadata
    )
    hits = (await _search(api, "eruption ash volcano")).hits
    assert library["volcano"] not in {h.job for h in hits}


@pytest.mark.parametrize(
    "query",
    [
        "a & b | !c",
        "'quoted' \"double\"",
        "(((",
        ":*",
        "\\",
        "'; DROP TABLE search_passages; --",
        "火山 爆發",
        "🌋🔥",
        "x" * 1000,
    ],
)
async def test_hostile_queries_are_answered(api: Api, query: str) -> None:
    reply = await _search(api, query)
    assert isinstance(list(reply.hits), list)


async def test_nul_characters_are_invalid_not_internal(api: Api) -> None:
    """Postgres text cannot hold NUL; the fuzzer found `"\\0"` answered INTERNAL."""
    for call in (
        _search(api, "\0"),
        api.transcripts.AskQuestion(
            transcript_service_pb2.AskQuestionRequest(question="lava\0"), metadata=api.metadata
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_details(err.value)["ErrorInfo"].reason == "NUL_CHARACTER"


@pytest.mark.parametrize("query", ["", "   ", "x" * 10_000])
async def test_empty_or_huge_queries_are_invalid(api: Api, query: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _search(api, query)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(err.value)["BadRequest"].field_violations[0].field == "query"


async def test_cli_search_prints_timestamped_hits(
    server: object, library: dict[str, str], user: str
) -> None:
    import asyncio
    import subprocess

    env = client_env(server.port, token_for(user))  # type: ignore[attr-defined]
    done = await asyncio.to_thread(
        subprocess.run,
        [*CLI, "search", "eruption"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    job, span, snippet = first.split("  ", 2)
    assert job == library["volcano"]
    assert span.count(":") == 2 and "\u2013" in span
    assert "[eruption]" in snippet.lower()
