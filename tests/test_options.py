"""Job options: one typed object from the request to the stored row and every stage."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from reelscribe import names, queue
from reelscribe.config import Settings
from reelscribe.db import transcripts as transcripts_db
from reelscribe.options import JobOptions
from reelscribe.states import Stage
from reelscribe.v1 import job_pb2
from reelscribe.v1 import transcript_service_pb2 as tpb
from server.app import ServerApp
from tests.support.api import Api
from tests.support.media import MEDIA_DIR

MODEL = "tiny.en"


def test_request_options_survive_the_column_and_the_wire() -> None:
    pb = job_pb2.JobOptions(
        language="en",
        skip_cache=True,
        callback_uri="https://example.com/hook",
        callback_stage_events=True,
        extra_stages=[job_pb2.STAGE_RENDER_CLIPS, job_pb2.STAGE_ANALYZE, job_pb2.STAGE_ANALYZE],
        highlight_count=3,
        translate_to="fr",
        clip_vertical=True,
    )
    options = JobOptions.from_pb(pb, default_model=MODEL)
    assert options.model == MODEL  # an empty model means the server's own
    # Stages are kept once each, in a stable order.
    assert options.extra_stages == (Stage.ANALYZE, Stage.RENDER_CLIPS)
    stored = json.loads(json.dumps(options.to_json()))
    assert JobOptions.from_json(stored) == options
    back = options.to_pb()
    assert back.model == MODEL
    assert list(back.extra_stages) == [job_pb2.STAGE_ANALYZE, job_pb2.STAGE_RENDER_CLIPS]
    assert (back.highlight_count, back.translate_to, back.clip_vertical) == (3, "fr", True)


def test_stored_options_from_any_version_load() -> None:
    assert JobOptions.from_json(None) == JobOptions()
    assert JobOptions.from_json({}) == JobOptions()
    older = JobOptions.from_json(
        {
            "language": "yue",
            "highlight_count": 2,
            "translate_to": None,
            "beam_size": 5,  # a key this version does not know
            "extra_stages": ["ANALYZE", "SENTIMENT"],  # a stage it does not know
        }
    )
    assert older == JobOptions(language="yue", highlight_count=2, extra_stages=(Stage.ANALYZE,))
    assert older.requested_stages() == [Stage.ANALYZE, Stage.HIGHLIGHTS]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (job_pb2.JobOptions(language="english!"), "options.language"),
        (job_pb2.JobOptions(language="fr"), "options.language"),  # English-only model
        (job_pb2.JobOptions(language="xx"), "options.language"),  # no model knows it
        (job_pb2.JobOptions(model="gigantic"), "options.model"),
        (job_pb2.JobOptions(extra_stages=[job_pb2.STAGE_TRANSCRIBE]), "options.extra_stages"),
        (job_pb2.JobOptions(extra_stages=[99]), "options.extra_stages"),  # type: ignore[list-item]
        (job_pb2.JobOptions(highlight_count=21), "options.highlight_count"),
        (job_pb2.JobOptions(translate_to="xx-Klingon"), "options.translate_to"),
    ],
)
def test_violations_name_the_field(options: job_pb2.JobOptions, field: str) -> None:
    assert {v.field for v in JobOptions.violations(options, default_model=MODEL)} == {field}


def test_a_language_the_model_cannot_transcribe_names_the_models_that_can() -> None:
    (refused,) = JobOptions.violations(job_pb2.JobOptions(language="de"), default_model="tiny.en")
    assert "tiny.en" in refused.description and "models that can: base" in refused.description
    ok = job_pb2.JobOptions(language="de-AT", model="base")
    assert JobOptions.violations(ok, default_model="tiny.en") == []
    (unknown,) = JobOptions.violations(job_pb2.JobOptions(model="large"), default_model="base")
    assert "base" in unknown.description and "tiny.en" in unknown.description


def test_valid_options_have_no_violations() -> None:
    pb = job_pb2.JobOptions(
        language="en", extra_stages=[job_pb2.STAGE_ROMANIZE], highlight_count=20, translate_to="de"
    )
    assert JobOptions.violations(pb, default_model=MODEL) == []


def test_cache_key_reads_the_same_material_as_the_stored_json() -> None:
    # Transcripts cached before options were typed keep their keys.
    stored = {"model": MODEL, "language": "en", "disable_word_timestamps": True, "x": 1}
    key = transcripts_db.cache_key("alice", "ab" * 32, JobOptions.from_json(stored))
    material = {
        "owner": "alice",
        "sha256": "ab" * 32,
        "model": MODEL,
        "language": "en",
        "words": False,
        "pipeline": transcripts_db.PIPELINE_VERSION,
    }
    assert key == hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


async def test_a_row_written_by_another_version_still_runs(
    api: Api, user: str, server: ServerApp, settings: Settings
) -> None:
    """A job row whose options have keys this version does not know, and lack
    keys it does, reads through GetJob and runs through every stage."""
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    job_id = uuid.uuid4()
    stored = {
        "language": "en",
        "highlight_count": 1,
        "speaker_labels": True,  # unknown here
        "vocabulary": {"boost": ["ocean"]},  # unknown here
    }  # no model, word timestamps, cache, callback, stage or clip keys
    async with server.deps.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO jobs (id, owner, request_hash, media_id, options, state, stage, message)"
            " VALUES ($1, $2, '', $3, $4::text::jsonb, 'QUEUED', 'QUEUED', 'queued')",
            job_id,
            user,
            names.parse_media_name(media.name),
            json.dumps(stored),
        )
    name = names.job_name(job_id)

    job = await api.get(name)
    assert job.state == job_pb2.JOB_STATE_QUEUED
    assert job.options.language == "en"
    assert job.options.highlight_count == 1
    assert job.options.model == ""
    assert not job.options.disable_word_timestamps
    assert list(job.options.extra_stages) == []

    jq = server.deps.queue
    jq.enqueue_sync(jq.message(queue.PREPARE_JOB, job_id))
    events = await api.watch(name)
    final = events[-1].job
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final.error
    started = [e.stage for e in events if e.kind == job_pb2.JOB_EVENT_KIND_STAGE_STARTED]
    assert job_pb2.STAGE_TRANSCRIBE in started
    assert job_pb2.STAGE_HIGHLIGHTS in started  # asked for by highlight_count

    transcript = await api.transcript(name)
    assert transcript.language == "en"
    assert transcript.model == settings.whisper_model_name  # the missing model's default
    assert any(w.text for s in transcript.segments for w in s.words)  # word timestamps on
    highlights = await api.transcripts.ListHighlights(
        tpb.ListHighlightsRequest(name=name), metadata=api.metadata, timeout=30
    )
    assert len(highlights.highlights) == 1
