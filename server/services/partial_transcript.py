"""GetPartialTranscript: a running job's finished chunks, before the merge.

The text is what the recognizer returned for each chunk, on the media's
timeline. It is provisional: the merge later lengthens words over silences,
flags doubtful segments and labels languages and speakers, so none of that is
claimed here.
"""

from __future__ import annotations

from typing import Any

from reelscribe import names
from reelscribe.db import jobs as jobs_db
from reelscribe.db import partial_transcripts as partial_db
from reelscribe.errors import FailedPrecondition, InvalidArgument
from reelscribe.v1 import transcript_service_pb2 as tpb
from server.context import current_principal
from server.deps import Deps

#: Most chunk indexes one request may name.
MAX_CHUNK_INDEXES = 1000


async def get_partial_transcript(
    deps: Deps, request: tpb.GetPartialTranscriptRequest
) -> tpb.GetPartialTranscriptResponse:
    """The finished chunks of the job's transcript asked for, in order."""
    job_id = names.parse_transcript_name(request.name)
    indexes = list(request.chunk_indexes)
    if len(indexes) > MAX_CHUNK_INDEXES:
        raise InvalidArgument.field("chunk_indexes", f"at most {MAX_CHUNK_INDEXES} indexes")
    if any(i < 0 for i in indexes):
        raise InvalidArgument.field("chunk_indexes", "indexes start at 0")
    async with deps.pool.acquire() as conn:
        # Another user's job is NOT_FOUND, as everywhere.
        await jobs_db.get_visible_job(conn, job_id, current_principal(), request.name)
        found = await partial_db.read(conn, job_id, sorted(set(indexes)))
    name = f"{names.job_name(job_id)}/transcript"
    if found.transcript_stored:
        # The merged transcript replaces the chunks: it is the one to show.
        raise FailedPrecondition(
            f"{name} is stored; read it with GetTranscript",
            reason="TRANSCRIPT_READY",
        )
    by_chunk: dict[int, list[tpb.PartialSegment]] = {}
    for s in found.segments:
        by_chunk.setdefault(s["chunk_idx"], []).append(
            tpb.PartialSegment(
                start_seconds=s["start_s"],
                end_seconds=s["end_s"],
                text=s["text"],
                words=[] if request.omit_words else [_word(w) for w in s["words"]],
            )
        )
    return tpb.GetPartialTranscriptResponse(
        name=name,
        chunk_count=found.chunk_count,
        finished_chunk_count=found.finished_count,
        chunks=[
            tpb.PartialChunk(
                index=c["idx"],
                start_seconds=c["start_s"],
                end_seconds=c["end_s"],
                segments=by_chunk.get(c["idx"], []),
            )
            for c in found.chunks
        ],
    )


def _word(w: dict[str, Any]) -> tpb.Word:
    return tpb.Word(
        start_seconds=w["start_s"],
        end_seconds=w["end_s"],
        text=w["text"],
        probability=w["probability"],
    )
