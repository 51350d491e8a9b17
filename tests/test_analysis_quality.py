"""What the offline analysis says, on the real stack: whole-sentence summaries
without repetition, titles that are not one word twice, and questions the
recordings do not answer answered as such."""

from __future__ import annotations

from reelscribe.insights import keyphrases, sentences
from reelscribe.insights.base import Seg
from reelscribe.insights.local import NO_ANSWER
from reelscribe.v1 import job_pb2, transcript_service_pb2
from tests.support.api import Api
from tests.support.media import LECTURE, MEDIA_DIR

tpb = transcript_service_pb2


def _sentences(text: str) -> list[str]:
    return [s.text for s in sentences.split([Seg(0, 0.0, 1.0, text)])]


async def _ask(api: Api, question: str, name: str = "") -> tpb.AskQuestionResponse:
    return await api.transcripts.AskQuestion(
        tpb.AskQuestionRequest(question=question, name=name), metadata=api.metadata, timeout=60
    )


async def test_summaries_are_whole_sentences_once_each(api: Api) -> None:
    job = await api.run(LECTURE, skip_cache=True)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED
    whole = _sentences((await api.transcript(job.name)).text)
    picked = {}
    for fmt in (tpb.SUMMARY_FORMAT_SHORT, tpb.SUMMARY_FORMAT_BULLETS, tpb.SUMMARY_FORMAT_DETAILED):
        summary = await api.transcripts.GetSummary(
            tpb.GetSummaryRequest(name=job.name, format=fmt), metadata=api.metadata, timeout=60
        )
        got = list(summary.bullets) or _sentences(summary.text)
        assert set(got) <= set(whole), got  # sentences of the transcript, never fragments
        assert len(got) == len(set(got)) and got == sorted(got, key=whole.index)
        picked[fmt] = got
    assert set(picked[tpb.SUMMARY_FORMAT_SHORT]) <= set(picked[tpb.SUMMARY_FORMAT_DETAILED])
    chapters = (
        await api.transcripts.ListChapters(
            tpb.ListChaptersRequest(name=job.name), metadata=api.metadata, timeout=60
        )
    ).chapters
    for chapter in chapters:
        assert " and " not in chapter.title.lower() and chapter.title[0].isupper()
        assert len(keyphrases.stems(chapter.title)) == len(chapter.title.split())


async def test_questions_the_recordings_do_not_answer(api: Api) -> None:
    lecture = await api.run(LECTURE)
    volcano = await api.run(MEDIA_DIR / "volcano.ogg")
    assert lecture.state == volcano.state == job_pb2.JOB_STATE_SUCCEEDED
    for name in (lecture.name, ""):  # one recording, then the whole library
        off = await _ask(api, "What is the capital of France?", name)
        assert (off.answer, list(off.citations)) == (NO_ANSWER, [])
    on = await _ask(api, "what green pigment do plants use", lecture.name)
    assert on.citations and on.answer != NO_ANSWER
    assert "chlorophyll" in on.citations[0].text.lower()
    lava = await _ask(api, "what does an eruption throw into the sky")
    assert lava.citations[0].job == volcano.name and "ash" in lava.answer.lower()
