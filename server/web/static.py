"""The web console's files, served from `web_static_dir` (the built console).

`/` is `index.html`; other paths are files under the directory, never outside
it. A path with no file extension that names no file also gets `index.html`,
so a console that routes by path survives a reload. A missing directory is
said plainly at `/`, rather than as a bare 404.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path

from server.web.grpcweb import Send, plain_response

#: Types the console's files need, whatever the host's mime database says.
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json",
}


class StaticFiles:
    """Files under one directory, for GET and HEAD."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _find(self, path: str) -> Path | None:
        root = self.root.resolve()
        relative = path.lstrip("/")  # (the ASGI path is already percent-decoded)
        if not relative or relative.endswith("/"):
            relative += "index.html"
        candidate = (root / relative).resolve()
        if not candidate.is_relative_to(root):
            return None
        if candidate.is_file():
            return candidate
        if not candidate.suffix:  # a console route, not a missing asset
            index = root / "index.html"
            return index if index.is_file() else None
        return None

    async def serve(self, path: str, method: str, send: Send) -> None:
        """Answer GET or HEAD of `path`."""
        if not self.root.is_dir():
            await plain_response(
                send,
                404,
                f"The web console is not built here: {self.root} does not exist.\n"
                "Build it (npm run build in clients/web) or point "
                "REELSCRIBE_WEB_STATIC_DIR at a built console; the gRPC-Web API "
                "answers on this address either way.\n",
            )
            return
        found = await asyncio.to_thread(self._find, path)
        if found is None:
            await plain_response(send, 404, f"not found: {path}\n")
            return
        body = await asyncio.to_thread(found.read_bytes)
        content_type = _TYPES.get(found.suffix) or (
            mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    # A rebuilt console is picked up at the next load.
                    (b"cache-control", b"no-cache"),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": b"" if method == "HEAD" else body,
                "more_body": False,
            }
        )
