"""The baseline: a bare grpc.aio server with the same RPC shapes and no work.

No database, no Redis, no auth, no queue: every call answers at once with a
response recorded from the Reelscribe run (so messages have the same sizes),
UploadMedia after draining the client's chunks, WatchJob by streaming the
recorded events of one job back to back. Started as a subprocess by the
benchmark: `python -m bench.load.baseline PORT RESPONSES_JSON`; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from reelscribe.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    search_service_pb2,
    search_service_pb2_grpc,
    transcript_service_pb2,
    transcript_service_pb2_grpc,
)


def _load(path: Path) -> dict[str, list[bytes]]:
    raw = json.loads(path.read_text())
    return {key: [base64.b64decode(b) for b in values] for key, values in raw.items()}


class Jobs(job_service_pb2_grpc.JobServiceServicer):
    def __init__(self, recorded: dict[str, list[bytes]]) -> None:
        self.upload = job_service_pb2.UploadMediaResponse.FromString(recorded["upload"][0])
        self.create = job_service_pb2.CreateJobResponse.FromString(recorded["create"][0])
        self.events = [job_service_pb2.WatchJobResponse.FromString(b) for b in recorded["watch"]]

    async def UploadMedia(
        self,
        request_iterator: AsyncIterator[job_service_pb2.UploadMediaRequest],
        context: grpc.aio.ServicerContext,
    ) -> job_service_pb2.UploadMediaResponse:
        async for _ in request_iterator:
            pass
        return self.upload

    async def CreateJob(
        self, request: job_service_pb2.CreateJobRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.CreateJobResponse:
        return self.create

    async def WatchJob(
        self, request: job_service_pb2.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[job_service_pb2.WatchJobResponse]:
        for event in self.events:
            yield event


class Transcripts(transcript_service_pb2_grpc.TranscriptServiceServicer):
    def __init__(self, recorded: dict[str, list[bytes]]) -> None:
        self.reply = transcript_service_pb2.GetTranscriptResponse.FromString(
            recorded["transcript"][0]
        )

    async def GetTranscript(
        self,
        request: transcript_service_pb2.GetTranscriptRequest,
        context: grpc.aio.ServicerContext,
    ) -> transcript_service_pb2.GetTranscriptResponse:
        return self.reply


class Search(search_service_pb2_grpc.SearchServiceServicer):
    def __init__(self, recorded: dict[str, list[bytes]]) -> None:
        self.reply = search_service_pb2.SearchResponse.FromString(recorded["search"][0])

    async def Search(
        self, request: search_service_pb2.SearchRequest, context: grpc.aio.ServicerContext
    ) -> search_service_pb2.SearchResponse:
        return self.reply


async def main(port: int, responses: Path) -> None:
    recorded = _load(responses)
    server = grpc.aio.server()
    job_service_pb2_grpc.add_JobServiceServicer_to_server(Jobs(recorded), server)
    transcript_service_pb2_grpc.add_TranscriptServiceServicer_to_server(
        Transcripts(recorded), server
    )
    search_service_pb2_grpc.add_SearchServiceServicer_to_server(Search(recorded), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1.0)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2])))
