"""The one interceptor every call passes, one module per concern.

It wraps each method handler rather than only inspecting metadata, so that it
can bind the principal in a contextvar the handler's task sees, and translate
the exceptions a handler raises into one rich status, logged once with a
request id the client also receives. Health and reflection pass untouched.

    base      one wrapper for all four handler kinds, running a chain of hooks
    chain     `CallInterceptor`: the hooks below, in their order
    observe   metrics, the call's span, the log context
    errors    exception -> status: the one place that maps
    drain     graceful shutdown: refuse new calls, end streams with resume hints
    auth      token -> principal; a stream or upload ends when its token expires
    limits    rate limit (fail-closed for work creation), stream caps (per server and
              per user), default deadline
    malformed requests that do not parse -> INVALID_ARGUMENT, after authentication
"""

from server.interceptors.auth import PUBLIC_SERVICES
from server.interceptors.chain import CallInterceptor
from server.interceptors.drain import RESUME_HINTS, shutting_down
from server.interceptors.limits import FAIL_CLOSED_METHODS

__all__ = [
    "FAIL_CLOSED_METHODS",
    "PUBLIC_SERVICES",
    "RESUME_HINTS",
    "CallInterceptor",
    "shutting_down",
]
