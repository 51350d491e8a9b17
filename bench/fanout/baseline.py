"""The baseline: a bare grpc.aio server streaming the same messages to N watchers.

No database, no Redis, no auth: events are broadcast from memory. Started as
a subprocess by the benchmark: `python -m bench.fanout.baseline PORT WATCHERS EVENTS INTERVAL`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import grpc

from reelscribe.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc


class Broadcast(job_service_pb2_grpc.JobServiceServicer):
    """WatchJob that streams whatever `emit` broadcasts."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[job_pb2.JobEvent | None]] = set()
        self.connected = asyncio.Event()
        self.expected = 0

    async def WatchJob(
        self, request: job_service_pb2.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[job_service_pb2.WatchJobResponse]:
        q: asyncio.Queue[job_pb2.JobEvent | None] = asyncio.Queue()
        self.queues.add(q)
        snapshot = job_pb2.JobEvent(seq=0, kind=job_pb2.JOB_EVENT_KIND_SNAPSHOT)
        yield job_service_pb2.WatchJobResponse(event=snapshot)
        if len(self.queues) >= self.expected:
            self.connected.set()
        try:
            while (event := await q.get()) is not None:
                yield job_service_pb2.WatchJobResponse(event=event)
        finally:
            self.queues.discard(q)

    def emit(self, event: job_pb2.JobEvent | None) -> None:
        for q in self.queues:
            q.put_nowait(event)


async def main(port: int, watchers: int, events: int, interval_s: float) -> None:
    service = Broadcast()
    service.expected = watchers
    server = grpc.aio.server()
    job_service_pb2_grpc.add_JobServiceServicer_to_server(service, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await service.connected.wait()
    await asyncio.sleep(0.5)
    for seq in range(1, events + 1):
        # The same shape and size as Reelscribe's events: each carries the job.
        job = job_pb2.Job(
            name="jobs/5f0c4a9e-1d57-4b8e-9a61-1f4ac1b0a111",
            media="media/0b6f3a52-8c1e-4a55-a2d9-9f7a6e0c1d23",
            options=job_pb2.JobOptions(model="tiny.en"),
            state=job_pb2.JOB_STATE_RUNNING,
            stage=job_pb2.STAGE_TRANSCRIBE,
            progress=seq / events,
            message=f"progress {seq}",
            last_event_seq=seq,
            owner="bench",
            attempts=1,
        )
        job.create_time.GetCurrentTime()
        job.update_time.GetCurrentTime()
        job.start_time.GetCurrentTime()
        event = job_pb2.JobEvent(
            seq=seq,
            kind=job_pb2.JOB_EVENT_KIND_PROGRESS,
            job=job,
            stage=job.stage,
            message=f"progress {seq}",
        )
        event.time.GetCurrentTime()
        service.emit(event)
        await asyncio.sleep(interval_s)
    service.emit(None)
    await asyncio.sleep(1.0)
    await server.stop(1.0)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
