"""Cached answers follow the library: after DeleteJob no answer quotes the deleted
job, and a newly indexed job is not hidden behind an answer cached before it."""

from __future__ import annotations

from reelscribe.v1 import job_pb2, job_service_pb2, transcript_service_pb2
from tests.support.api import Api
from tests.support.media import MEDIA_DIR

tpb = transcript_service_pb2
QUESTION = "what does an eruption throw into the sky"


async def _ask(api: Api) -> tpb.AskQuestionResponse:
    return await api.transcripts.AskQuestion(
        tpb.AskQuestionRequest(question=QUESTION), metadata=api.metadata, timeout=60
    )


async def test_a_deleted_job_is_not_answered_from_the_cache(api: Api) -> None:
    volcano = await api.run(MEDIA_DIR / "volcano.ogg")
    assert volcano.state == job_pb2.JOB_STATE_SUCCEEDED
    reply = await _ask(api)
    assert [c.job for c in reply.citations][:1] == [volcano.name]
    assert await _ask(api) == reply  # cached

    await api.jobs.DeleteJob(
        job_service_pb2.DeleteJobRequest(name=volcano.name), metadata=api.metadata, timeout=30
    )
    after = await _ask(api)
    assert volcano.name not in {c.job for c in after.citations}
    assert not after.citations  # nothing else in this library

    # A job indexed later is found by the same question (not the cached "nothing").
    again = await api.run(MEDIA_DIR / "volcano.ogg", skip_cache=True)
    assert again.state == job_pb2.JOB_STATE_SUCCEEDED
    assert [c.job for c in (await _ask(api)).citations][:1] == [again.name]
