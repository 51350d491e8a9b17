"""The listener's ASGI app: gRPC-Web calls, their CORS preflights, the console's files."""

from __future__ import annotations

from server.web.cors import CorsPolicy
from server.web.grpcweb import GrpcWebApp, Receive, Scope, Send, header, plain_response
from server.web.static import StaticFiles


class WebApp:
    """POST to `/<package>.<Service>/<Method>` is a call; GET is a file of the console."""

    def __init__(self, calls: GrpcWebApp, cors: CorsPolicy, static: StaticFiles) -> None:
        self.calls = calls
        self.cors = cors
        self.static = static

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # (lifespan is off and websockets are not served)
        method: str = scope["method"]
        path: str = scope["path"]
        raw_origin = header(scope, b"origin")
        origin = raw_origin.decode("latin-1") if raw_origin is not None else None
        if method == "POST":
            await self.calls.serve(scope, receive, send, self.cors.response_headers(origin))
        elif method == "OPTIONS":
            allowed = self.cors.preflight_headers(origin)
            if allowed is None:
                await plain_response(
                    send,
                    403,
                    f"origin {origin} may not call this server (see web_cors_origins)\n",
                    [("vary", "origin")],
                )
            else:
                await plain_response(send, 204, "", allowed)
        elif method in ("GET", "HEAD"):
            await self.static.serve(path, method, send)
        else:
            await plain_response(send, 405, f"{method} is not served here\n")
