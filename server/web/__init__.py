"""gRPC-Web beside native gRPC: the same services, for browsers, and the web console.

One more listener in the server process (uvicorn in the server's event loop),
serving the servicer objects of the grpc.aio server through the same
interceptor, so a browser's call meets the same rules as a native one.

    grpcweb   sonora's handler registry, our call flow (one call on the wire)
    context   grpc.aio's servicer context, for a gRPC-Web call
    frames    the wire format: frames, trailers, metadata as headers
    cors      CORS for configured origins only
    static    the console's files
    router    the ASGI app: calls, preflights, files
    listener  uvicorn, started and stopped by the server
"""

import socket

from reelscribe.config import Settings
from reelscribe.v1 import (
    job_service_pb2_grpc,
    search_service_pb2_grpc,
    transcript_service_pb2_grpc,
)
from server.web.cors import CorsPolicy
from server.web.grpcweb import GrpcWebApp, Wrap
from server.web.listener import WebListener, bind_web
from server.web.router import WebApp
from server.web.static import StaticFiles

__all__ = [
    "CorsPolicy",
    "GrpcWebApp",
    "StaticFiles",
    "WebApp",
    "WebListener",
    "bind_web",
    "web_listener",
]


def web_listener(
    settings: Settings,
    wrap: Wrap,
    sock: socket.socket,
    jobs: job_service_pb2_grpc.JobServiceServicer,
    transcripts: transcript_service_pb2_grpc.TranscriptServiceServicer,
    search: search_service_pb2_grpc.SearchServiceServicer,
) -> WebListener:
    """The listener for `settings.web_listen` (bound to `sock`, from `bind_web`),
    serving these servicer objects with each handler wrapped by `wrap` (the
    server's `CallInterceptor.wrap`)."""
    # Requests are bounded as native gRPC's are: a chunk of the largest size, plus framing.
    calls = GrpcWebApp(wrap, max_request_bytes=settings.max_chunk_bytes + 64 * 1024)
    job_service_pb2_grpc.add_JobServiceServicer_to_server(jobs, calls)
    transcript_service_pb2_grpc.add_TranscriptServiceServicer_to_server(transcripts, calls)
    search_service_pb2_grpc.add_SearchServiceServicer_to_server(search, calls)
    return WebListener(
        WebApp(calls, CorsPolicy(settings.web_cors_origins), StaticFiles(settings.web_static_dir)),
        settings.web_listen,
        sock,
    )
