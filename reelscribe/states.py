"""Job states and stages as stored in Postgres (enum names without prefix)."""

from __future__ import annotations

from typing import cast

from reelscribe.v1 import job_pb2

QUEUED = "QUEUED"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"

#: States after which nothing changes any more.
TERMINAL: frozenset[str] = frozenset({SUCCEEDED, FAILED, CANCELLED})
#: States a worker may (re)start.
ACTIVE: tuple[str, ...] = (QUEUED, RUNNING)


def state_to_pb(state: str) -> job_pb2.JobState:
    """`QUEUED` -> `JOB_STATE_QUEUED`."""
    return cast(job_pb2.JobState, job_pb2.JobState.Value(f"JOB_STATE_{state}"))


def state_from_pb(value: job_pb2.JobState) -> str:
    """`JOB_STATE_QUEUED` -> `QUEUED`; raises ValueError for unknown values."""
    name = job_pb2.JobState.Name(value)
    if value == job_pb2.JOB_STATE_UNSPECIFIED:
        raise ValueError("unspecified state")
    return name.removeprefix("JOB_STATE_")


def stage_to_pb(stage: str) -> job_pb2.Stage:
    """`TRANSCRIBE` -> `STAGE_TRANSCRIBE`."""
    return cast(job_pb2.Stage, job_pb2.Stage.Value(f"STAGE_{stage}"))
