"""Job states and pipeline stages, as stored in Postgres.

Both enums mirror the protobuf enums `JobState` and `Stage` without their
prefix: `JOB_STATE_QUEUED` is stored as `QUEUED`, `STAGE_TRANSCRIBE` as
`TRANSCRIBE`. They are `StrEnum`s, so a member equals (and is stored as) its
plain string, and rows read back from Postgres compare equal to members.
"""

from __future__ import annotations

from enum import StrEnum
from typing import cast

from reelscribe.v1 import job_pb2


class JobState(StrEnum):
    """Lifecycle state of a job (`reelscribe.v1.JobState`)."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    def to_pb(self) -> job_pb2.JobState:
        """`QUEUED` -> `JOB_STATE_QUEUED`."""
        return cast(job_pb2.JobState, job_pb2.JobState.Value(f"JOB_STATE_{self.value}"))

    @classmethod
    def from_pb(cls, value: int) -> JobState:
        """`JOB_STATE_QUEUED` -> `QUEUED`; ValueError for unknown or unspecified values."""
        if value == job_pb2.JOB_STATE_UNSPECIFIED:
            raise ValueError("unspecified state")
        return cls(job_pb2.JobState.Name(value).removeprefix("JOB_STATE_"))


class Stage(StrEnum):
    """A pipeline stage (`reelscribe.v1.Stage`), in the order a job passes them."""

    QUEUED = "QUEUED"
    INGEST = "INGEST"
    PROBE = "PROBE"
    EXTRACT_AUDIO = "EXTRACT_AUDIO"
    DETECT_SPEECH = "DETECT_SPEECH"
    TRANSCRIBE = "TRANSCRIBE"
    MERGE = "MERGE"
    INDEX = "INDEX"
    ANALYZE = "ANALYZE"
    HIGHLIGHTS = "HIGHLIGHTS"
    RENDER_CLIPS = "RENDER_CLIPS"
    TRANSLATE = "TRANSLATE"
    ROMANIZE = "ROMANIZE"
    FINALIZE = "FINALIZE"
    DIARIZE = "DIARIZE"

    def to_pb(self) -> job_pb2.Stage:
        """`TRANSCRIBE` -> `STAGE_TRANSCRIBE`."""
        return cast(job_pb2.Stage, job_pb2.Stage.Value(f"STAGE_{self.value}"))

    @classmethod
    def from_pb(cls, value: int) -> Stage:
        """`STAGE_TRANSCRIBE` -> `TRANSCRIBE`; ValueError for unknown or unspecified values."""
        if value == job_pb2.STAGE_UNSPECIFIED:
            raise ValueError("unspecified stage")
        return cls(job_pb2.Stage.Name(value).removeprefix("STAGE_"))


#: States after which nothing changes any more.
TERMINAL: frozenset[JobState] = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
#: States a worker may (re)start.
ACTIVE: tuple[JobState, ...] = (JobState.QUEUED, JobState.RUNNING)
