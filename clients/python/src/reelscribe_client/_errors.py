"""Errors: gRPC failures translated into one exception with the `google.rpc` details."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class ReelscribeError(Exception):
    """A failed call: the gRPC code, the server's message and its error details."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        field_violations: dict[str, str] | None = None,
        retry_after_s: float | None = None,
        request_id: str = "",
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        #: `ErrorInfo.reason`, e.g. `JOB_NOT_FOUND`.
        self.reason = reason
        #: `BadRequest` field violations, field → description.
        self.field_violations = field_violations or {}
        #: `RetryInfo.retry_delay`, when the server suggested one.
        self.retry_after_s = retry_after_s
        #: The server's id of the failed call (quote it when reporting).
        self.request_id = request_id


def from_rpc_error(exc: grpc.aio.AioRpcError) -> ReelscribeError:
    """Translate a grpc error, unpacking ErrorInfo, BadRequest and RetryInfo."""
    reason, request_id, retry_after_s = "", "", None
    violations: dict[str, str] = {}
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, request_id = info.reason, info.metadata.get("request_id", "")
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = {v.field: v.description for v in bad.field_violations}
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after_s = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
    return ReelscribeError(
        exc.code(),
        exc.details() or "",
        reason=reason,
        field_violations=violations,
        retry_after_s=retry_after_s,
        request_id=request_id,
    )
