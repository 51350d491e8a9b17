"""The Gemini provider through the whole system, and Cantonese romanization.

A server and a worker of their own (own queue) talk to a local fake of the
Gemini REST API (`tests/support/gemini_fake.py`): the only fake in the suite,
standing in for a paid external API.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import grpc
import pytest
from pydantic import SecretStr

from reelscribe.config import Settings
from reelscribe.v1 import job_pb2, job_service_pb2, transcript_service_pb2
from server.app import ServerApp
from tests.support.api import Api
from tests.support.gemini_fake import GeminiFake, Reply, Status
from tests.support.media import LECTURE, MEDIA_DIR
from tests.support.processes import WorkerProcess
from tests.support.tokens import token_for

tpb = transcript_service_pb2


@pytest.fixture(scope="module")
def gemini() -> Iterator[GeminiFake]:
    with GeminiFake(api_key="test-key") as fake:
        yield fake


@pytest.fixture(scope="module")
def gemini_settings(settings: Settings, gemini: GeminiFake) -> Settings:
    return settings.model_copy(
        update={
            "queue_name": f"{settings.queue_name}-gemini",
            "gemini_api_key": SecretStr("test-key"),
            "gemini_base_url": gemini.base_url,
            "gemini_backoff_s": 0.05,
            "gemini_max_attempts": 2,
            "gemini_timeout_s": 5.0,
        }
    )


@pytest.fixture(scope="module")
def gemini_worker(gemini_settings: Settings, data_dir: Path) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(
        gemini_settings,
        data_dir / "gemini-worker.log",
        extra_env={
            "GEMINI_API_KEY": "test-key",
            "REELSCRIBE_GEMINI_BASE_URL": gemini_settings.gemini_base_url,
            "REELSCRIBE_GEMINI_BACKOFF_S": "0.05",
            "REELSCRIBE_GEMINI_MAX_ATTEMPTS": "2",
            "REELSCRIBE_GEMINI_TIMEOUT_S": "5",
        },
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
async def gemini_api(
    gemini_settings: Settings, gemini_worker: WorkerProcess, server: ServerApp
) -> AsyncIterator[Api]:
    app = ServerApp(gemini_settings)
    await app.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield Api(channel, token_for(f"gemini-user-{uuid.uuid4().hex[:8]}"))
    await app.stop(grace_s=0.5)


async def run_child(api: Api, parent: str, **options: object) -> job_pb2.Job:
    request = job_service_pb2.CreateJobRequest(
        request_id=str(uuid.uuid4()), parent=parent, options=job_pb2.JobOptions(**options)
    )  # type: ignore[arg-type]
    job = (await api.jobs.CreateJob(request, metadata=api.metadata, timeout=30)).job
    return (await api.watch(job.name))[-1].job


@pytest.fixture(scope="module")
async def parent_job(gemini_api: Api) -> job_pb2.Job:
    job = await gemini_api.run(MEDIA_DIR / "ocean.ogg")
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED
    return job


async def test_translation_child_job(
    gemini_api: Api, parent_job: job_pb2.Job, gemini: GeminiFake
) -> None:
    job = await run_child(gemini_api, parent_job.name, translate_to="fr")
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
    original = await gemini_api.transcript(job.name)
    translated = (
        await gemini_api.transcripts.GetTranscript(
            tpb.GetTranscriptRequest(name=job.name, translation_language="fr"),
            metadata=gemini_api.metadata,
            timeout=30,
        )
    ).transcript
    assert translated.language == "fr"
    assert len(translated.segments) == len(original.segments) > 0
    for before, after in zip(original.segments, translated.segments, strict=True):
        # The fake translates a line as "[fr] <text>".
        assert after.text == f"[fr] {before.text.strip()}"
        assert after.start_seconds == before.start_seconds and not after.words
    exported = await gemini_api.transcripts.ExportTranscript(
        tpb.ExportTranscriptRequest(
            name=job.name, format=tpb.EXPORT_FORMAT_SRT, translation_language="fr"
        ),
        metadata=gemini_api.metadata,
        timeout=30,
    )
    assert "[fr]" in exported.content
    requests = [r for r in gemini.requests if r.kind == "translation"]
    assert requests and requests[-1].api_key == "test-key"

    # A second translation of the same transcript comes from the cache: no request.
    count = len(gemini.requests)
    again = await run_child(gemini_api, parent_job.name, translate_to="fr")
    assert again.state == job_pb2.JOB_STATE_SUCCEEDED
    assert len(gemini.requests) == count


async def test_gemini_summary_records_tokens(gemini_api: Api, parent_job: job_pb2.Job) -> None:
    summary = await gemini_api.transcripts.GetSummary(
        tpb.GetSummaryRequest(name=parent_job.name, format=tpb.SUMMARY_FORMAT_BULLETS),
        metadata=gemini_api.metadata,
        timeout=60,
    )
    assert summary.provider == "gemini" and summary.bullets
    today = datetime.now(UTC).date().isoformat()
    report = await gemini_api.jobs.GetCostReport(
        job_service_pb2.GetCostReportRequest(start_date=today, end_date=today),
        metadata=gemini_api.metadata,
        timeout=30,
    )
    assert report.days[0].provider_tokens > 0


async def test_provider_nonsense_fails_the_stage_not_the_transcript(
    gemini_api: Api, parent_job: job_pb2.Job, gemini: GeminiFake
) -> None:
    # The analysis call and its one retry on bad output both get nonsense.
    gemini.script([Reply("this is not json"), Reply('{"summaries": 3}')])
    job = await run_child(gemini_api, parent_job.name, extra_stages=[job_pb2.STAGE_ANALYZE])
    assert job.state == job_pb2.JOB_STATE_FAILED
    assert job.error.reason == "PROVIDER_BAD_OUTPUT"
    assert job.error.stage == job_pb2.STAGE_ANALYZE
    assert gemini.pending == 0
    # The transcript is intact and readable.
    transcript = await gemini_api.transcript(job.name)
    assert transcript.segments and transcript.text


async def test_rate_limited_provider_is_retried(
    gemini_api: Api, parent_job: job_pb2.Job, gemini: GeminiFake
) -> None:
    gemini.script([Status(429)])
    job = await run_child(gemini_api, parent_job.name, extra_stages=[job_pb2.STAGE_ANALYZE])
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
    assert gemini.pending == 0


# -- Cantonese (local provider, shared stack) -----------------------------------------------


async def test_cantonese_romanization(api: Api, settings: Settings) -> None:
    """The bundled model is English-only, so the transcript is rewritten in the
    database as a Cantonese-capable model would have produced it."""
    parent = await api.run(LECTURE)
    assert parent.state == job_pb2.JOB_STATE_SUCCEEDED
    job_id = uuid.UUID(parent.name.split("/")[1])
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "UPDATE transcripts SET language = 'yue', text = '香港人講廣東話 我哋去飲茶'"
                " WHERE job_id = $1",
                job_id,
            )
            await conn.execute("DELETE FROM words WHERE job_id = $1", job_id)
            await conn.execute("DELETE FROM segments WHERE job_id = $1 AND idx > 1", job_id)
            for idx, text in enumerate(["香港人講廣東話", "我哋去飲茶"]):
                await conn.execute(
                    "UPDATE segments SET text = $3 WHERE job_id = $1 AND idx = $2",
                    job_id,
                    idx,
                    text,
                )
            await conn.executemany(
                "INSERT INTO words (job_id, segment_idx, idx, start_s, end_s, text, probability)"
                " VALUES ($1, 0, $2, $3, $4, $5, 0.9)",
                # The words spell their segment's text, as Whisper's do: captions
                # are laid out from the words.
                [
                    (job_id, i, i * 0.3, i * 0.3 + 0.3, w)
                    for i, w in enumerate(["香港人", "講", "廣東話"])
                ],
            )
    finally:
        await conn.close()

    # Cantonese transcripts are romanized without being asked.
    child = await run_child(api, parent.name, extra_stages=[job_pb2.STAGE_ANALYZE])
    assert child.state == job_pb2.JOB_STATE_SUCCEEDED, child.error
    transcript = await api.transcript(child.name)
    first, second = transcript.segments[0], transcript.segments[1]
    assert first.jyutping == "hoeng1 gong2 jan4 gong2 gwong2 dung1 waa2"
    assert second.jyutping == "ngo5 dei6 heoi3 jam2 caa4"
    assert first.yale.startswith("hēung góng")
    assert [w.jyutping for w in first.words] == [
        "hoeng1 gong2 jan4",
        "gong2",
        "gwong2 dung1 waa2",
    ]

    exported = await api.transcripts.ExportTranscript(
        tpb.ExportTranscriptRequest(
            name=child.name,
            format=tpb.EXPORT_FORMAT_VTT,
            caption_options=tpb.CaptionOptions(romanization_line=True),
        ),
        metadata=api.metadata,
        timeout=30,
    )
    lines = exported.content.splitlines()
    assert lines[0] == "WEBVTT"
    i = lines.index("香港人講廣東話")
    assert lines[i + 1] == "hoeng1 gong2 jan4 gong2 gwong2 dung1 waa2"
    assert "-->" in lines[i - 1]


async def test_gemini_answers_cite_retrieved_passages(
    gemini_api: Api, parent_job: job_pb2.Job, gemini: GeminiFake
) -> None:
    reply = await gemini_api.transcripts.AskQuestion(
        tpb.AskQuestionRequest(question="how cold is deep water", name=parent_job.name),
        metadata=gemini_api.metadata,
        timeout=60,
    )
    assert reply.provider == "gemini" and reply.answer
    assert reply.citations and all(c.job == parent_job.name for c in reply.citations)
    asked = [r for r in gemini.requests if r.kind == "answer"][-1]
    # The model saw the retrieved passage it cites.
    assert reply.citations[0].text.strip() in asked.prompt
