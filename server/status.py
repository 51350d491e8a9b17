"""Domain errors to gRPC statuses with `google.rpc` error details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from reelscribe import errors

#: `ErrorInfo.domain` of every error this service raises.
ERROR_DOMAIN = "reelscribe.v1"

_CODES: list[tuple[type[errors.ReelscribeError], int]] = [
    (errors.InvalidArgument, code_pb2.INVALID_ARGUMENT),
    (errors.NotFound, code_pb2.NOT_FOUND),
    (errors.AlreadyExists, code_pb2.ALREADY_EXISTS),
    (errors.OutOfRange, code_pb2.OUT_OF_RANGE),
    (errors.FailedPrecondition, code_pb2.FAILED_PRECONDITION),
    (errors.Unauthenticated, code_pb2.UNAUTHENTICATED),
    (errors.PermissionDenied, code_pb2.PERMISSION_DENIED),
    (errors.ResourceExhausted, code_pb2.RESOURCE_EXHAUSTED),
    (errors.Unavailable, code_pb2.UNAVAILABLE),
    (errors.DeadlineExceeded, code_pb2.DEADLINE_EXCEEDED),
    (errors.Unimplemented, code_pb2.UNIMPLEMENTED),
]


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status(exc: errors.ReelscribeError, *, request_id: str) -> grpc.Status:
    """The rich status for a domain error, with ErrorInfo and specific details."""
    code = code_pb2.INTERNAL
    for cls, value in _CODES:
        if isinstance(exc, cls):
            code = value
            break
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=exc.reason,
                domain=ERROR_DOMAIN,
                metadata={**exc.metadata, "request_id": request_id},
            )
        )
    ]
    if isinstance(exc, errors.InvalidArgument) and exc.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in exc.violations
                    ]
                )
            )
        )
    if isinstance(exc, errors.ResourceExhausted):
        if exc.quota_violations:
            details.append(
                _pack(
                    error_details_pb2.QuotaFailure(
                        violations=[
                            error_details_pb2.QuotaFailure.Violation(
                                subject=v.subject, description=v.description
                            )
                            for v in exc.quota_violations
                        ]
                    )
                )
            )
        if exc.retry_after_s is not None:
            details.append(
                _pack(
                    error_details_pb2.RetryInfo(
                        retry_delay=duration_pb2.Duration(
                            seconds=int(exc.retry_after_s), nanos=int((exc.retry_after_s % 1) * 1e9)
                        )
                    )
                )
            )
    if isinstance(exc, errors.Unavailable):
        details.append(
            _pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1)))
        )
    return rpc_status.to_status(status_pb2.Status(code=code, message=exc.message, details=details))


def internal_status(*, request_id: str) -> grpc.Status:
    """The status for an unexpected failure: no stack trace, just the request id."""
    message = f"internal error; quote request id {request_id} when reporting it"
    return rpc_status.to_status(
        status_pb2.Status(
            code=code_pb2.INTERNAL,
            message=message,
            details=[
                _pack(
                    error_details_pb2.ErrorInfo(
                        reason="INTERNAL", domain=ERROR_DOMAIN, metadata={"request_id": request_id}
                    )
                )
            ],
        )
    )
