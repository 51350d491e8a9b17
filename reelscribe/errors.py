"""Domain exceptions, and a map of every exception the code base defines.

Domain code raises these; the server's error interceptor
(`server/interceptors/errors.py`) is the one place that turns them into gRPC
statuses with `google.rpc` details. Each carries a machine-readable `reason`
(the `ErrorInfo.reason`) and a message that is safe to show to the caller.
Failures of a backing service are translated where they happen, by the
adapter that talks to it (`raise Unavailable(...) from exc`), so nothing above
the adapters needs to know what a lost Postgres or Redis connection looks like.

The whole tree (defined here unless another module is named)::

    Exception
    ├── ReelscribeError                 meant for a caller; the interceptor maps it to a status
    │   ├── InvalidArgument             INVALID_ARGUMENT, with BadRequest field violations
    │   │                               (db.pool: NUL_CHARACTER, text Postgres cannot store)
    │   ├── NotFound                    NOT_FOUND
    │   ├── OutOfRange                  OUT_OF_RANGE
    │   ├── AlreadyExists               ALREADY_EXISTS
    │   ├── FailedPrecondition          FAILED_PRECONDITION
    │   ├── Unauthenticated             UNAUTHENTICATED (auth: bad or expired tokens)
    │   ├── PermissionDenied            PERMISSION_DENIED
    │   ├── ResourceExhausted           RESOURCE_EXHAUSTED, with QuotaFailure and RetryInfo
    │   │                               (rate limits, stream cap, quotas, a full blob store)
    │   ├── DeadlineExceeded            DEADLINE_EXCEEDED (the server's default deadline)
    │   ├── Unavailable                 UNAVAILABLE with RetryInfo: raised from the backend's
    │   │   │                           own error by db.pool, redis_client and queue
    │   │   └── server.hub.ShuttingDown     the server is stopping; resume elsewhere
    │   └── Unimplemented               UNIMPLEMENTED
    ├── MediaError                      media that cannot be processed; fails the job
    ├── insights.base.ProviderError     an insights provider failed; fails the stage
    │   └── insights.base.CannotTranslate   the provider has no translation
    ├── clips.ClipError                 a clip could not be rendered
    ├── workers.insights.StageFailed    an insights stage cannot produce its result
    └── workers.context.Cancelled       control flow: the job was cancelled, stop here

Workers record `MediaError`, `ProviderError`, `ClipError` and `StageFailed`
on the job as its failure reason; anything else, `Unavailable` included, is
re-raised so Dramatiq retries the message (see `JobContext.give_up_or_retry`).
A private control-flow exception (`db.transcripts._Rollback`) never leaves
its module. The Python client has a `ReelscribeError` of its own
(`reelscribe_client`): a failed call as the client sees it, built from the
status this tree becomes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldViolation:
    """One invalid request field (becomes a `google.rpc.BadRequest` entry)."""

    field: str
    description: str


class ReelscribeError(Exception):
    """Base of every error that is meant to reach a caller."""

    reason: str = "INTERNAL"

    def __init__(
        self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        #: Machine-readable facts for the caller (`ErrorInfo.metadata`), e.g. the
        #: offset to resume an upload from.
        self.metadata = dict(metadata or {})


class InvalidArgument(ReelscribeError):
    """The request is malformed; `violations` says which fields."""

    reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        violations: list[FieldViolation] | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.violations = violations or []

    @classmethod
    def field(cls, field: str, description: str, *, reason: str | None = None) -> InvalidArgument:
        """An error about exactly one field."""
        return cls(
            f"{field}: {description}",
            reason=reason,
            violations=[FieldViolation(field, description)],
        )


class NotFound(ReelscribeError):
    """The resource does not exist or is not visible to the caller."""

    reason = "NOT_FOUND"


class OutOfRange(ReelscribeError):
    """A position (offset, sequence number) lies outside what exists."""

    reason = "OUT_OF_RANGE"


class AlreadyExists(ReelscribeError):
    """A resource with that identity exists already."""

    reason = "ALREADY_EXISTS"


class FailedPrecondition(ReelscribeError):
    """The system is not in a state that allows the operation."""

    reason = "FAILED_PRECONDITION"


class Unauthenticated(ReelscribeError):
    """No valid credentials."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(ReelscribeError):
    """Valid credentials without the needed permission."""

    reason = "PERMISSION_DENIED"


@dataclass(frozen=True)
class QuotaViolation:
    """One exceeded quota (becomes a `google.rpc.QuotaFailure` entry)."""

    subject: str
    description: str


class ResourceExhausted(ReelscribeError):
    """A size, quota or rate limit was exceeded."""

    reason = "RESOURCE_EXHAUSTED"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        quota_violations: list[QuotaViolation] | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.quota_violations = quota_violations or []
        self.retry_after_s = retry_after_s


class DeadlineExceeded(ReelscribeError):
    """The call took longer than its deadline."""

    reason = "DEADLINE_EXCEEDED"


class Unavailable(ReelscribeError):
    """A dependency (database, broker) is unreachable; retrying may help."""

    reason = "UNAVAILABLE"


class Unimplemented(ReelscribeError):
    """The operation is part of the contract but not built yet."""

    reason = "NOT_IMPLEMENTED"


@dataclass(frozen=True)
class MediaError(Exception):
    """Media that cannot be processed; the job fails with this reason."""

    reason: str
    message: str
    details: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"
