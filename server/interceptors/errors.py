"""The one place where an exception becomes the call's status.

Domain errors (`reelscribe.errors`) become a rich status with `google.rpc`
details (`server.status`); anything else is a bug: INTERNAL, with no stack
trace for the caller, only the request id, and the traceback in the log.
Backends are not special-cased here: their adapters (the Postgres pool, the
Redis client, the queue) raise `Unavailable` from their own errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import structlog

from reelscribe import errors
from server import status
from server.hub import ShuttingDown
from server.interceptors.base import Call, Hook

log = structlog.get_logger(__name__)


def _code_set_on(ctx: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """The status a handler set itself (by aborting directly); UNKNOWN if unclear."""
    code = ctx.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _status_of(exc: BaseException, request_id: str) -> grpc.Status:
    """The status `exc` ends the call with, logged once."""
    if not isinstance(exc, errors.ReelscribeError):
        rich = status.internal_status(request_id=request_id)
        log.exception("unexpected error", code=rich.code.name, exc_info=exc)
        return rich
    rich = status.to_status(exc, request_id=request_id)
    if isinstance(exc, ShuttingDown):
        log.info("call ended: server shutting down", code=rich.code.name)
    elif isinstance(exc, errors.Unavailable) and exc.__cause__ is not None:
        # Operators need the backend's own error; the caller only gets "retry".
        log.warning("backing service unavailable", code=rich.code.name, error=repr(exc.__cause__))
    else:
        log.info("call failed", code=rich.code.name, reason=exc.reason, error=exc.message)
    return rich


async def abort(call: Call, exc: BaseException) -> None:
    """End `call` with the status for `exc` (raises grpc's AbortError)."""
    rich = _status_of(exc, call.request_id)
    call.code = rich.code
    await call.ctx.abort(
        rich.code, rich.details, (*rich.trailing_metadata, ("x-request-id", call.request_id))
    )


class MapErrors(Hook):
    """Ends a call that raised with the status its exception maps to."""

    @asynccontextmanager
    async def around_call(self, call: Call) -> AsyncIterator[None]:
        try:
            yield
        except grpc.aio.AbortError:
            # The handler aborted by itself (or a hook did through `abort`).
            call.code = call.code or _code_set_on(call.ctx)
            raise
        except Exception as exc:
            await abort(call, exc)
