"""Requests that do not parse: INVALID_ARGUMENT, after authentication, in our words.

grpc.aio deserializes a request before any interceptor code runs; a message
that does not parse (invalid UTF-8 in a string field, a truncated or
overlong field, nesting deeper than the parser allows) would end the call
with UNKNOWN and the parser's own message, before the token was even looked
at. `tolerant` wraps each method's deserializer so that such a message
becomes the `MALFORMED` marker instead; the hook chain (`server.interceptors.
base`) raises `malformed_request()` for it once the call's hooks have run
(authentication, rate limit, stream cap), so a caller without a valid token
learns nothing but UNAUTHENTICATED, and the parser's text never reaches anyone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from reelscribe.errors import InvalidArgument

#: `ErrorInfo.reason` of a request that is not a message of its method.
MALFORMED_REASON: Final = "MALFORMED_REQUEST"


class MalformedRequest:
    """Stands in for a request message that did not parse (one instance: `MALFORMED`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MALFORMED"


#: The marker a tolerant deserializer returns for bytes that do not parse.
MALFORMED: Final = MalformedRequest()

Deserializer = Callable[[bytes], Any]


def tolerant(deserializer: Deserializer | None) -> Deserializer | None:
    """`deserializer`, returning `MALFORMED` instead of raising on bad input."""
    if deserializer is None:
        return None
    parse = deserializer

    def deserialize(raw: bytes) -> Any:
        try:
            return parse(raw)
        except Exception:
            # The call reports it (logged once, by the error mapping) after
            # authentication; the parser's message is dropped here on purpose.
            return MALFORMED

    return deserialize


def malformed_request() -> InvalidArgument:
    """The error a call whose request did not parse ends with."""
    return InvalidArgument(
        "the request is not a well-formed message of this method; send requests "
        "as the generated stubs do",
        reason=MALFORMED_REASON,
    )


def check(request: Any) -> Any:
    """`request`, unless it is the `MALFORMED` marker (then raise)."""
    if request is MALFORMED:
        raise malformed_request()
    return request


async def checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A streamed request that raises `malformed_request()` at a message that did not parse."""
    async for request in requests:
        yield check(request)
