"""Reading clips back through ReadClip, and measuring what came back."""

from __future__ import annotations

import io

import av

from reelscribe.v1 import transcript_service_pb2 as tpb
from tests.support.api import Api


async def read_clip(api: Api, name: str, offset: int = 0) -> bytes:
    call = api.transcripts.ReadClip(
        tpb.ReadClipRequest(name=name, offset_bytes=offset), metadata=api.metadata, timeout=30
    )
    data = b""
    async for piece in call:
        assert piece.offset_bytes == offset + len(data)
        data += piece.data
    return data


def decoded_seconds(data: bytes) -> tuple[float, bool]:
    """(duration of the longest stream, has video) of a media file in memory."""
    with av.open(io.BytesIO(data)) as container:
        has_video = bool(container.streams.video)
        longest = 0.0
        for stream in container.streams:
            last = 0.0
            for frame in container.decode(stream):
                if frame.time is not None:
                    duration = (
                        frame.samples / frame.sample_rate
                        if isinstance(frame, av.AudioFrame)
                        else 0.1
                    )
                    last = max(last, frame.time + duration)
            container.seek(0)
            longest = max(longest, last)
    return longest, has_video
