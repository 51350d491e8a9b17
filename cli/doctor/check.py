"""One line of the doctor's report (`Check`), and the helpers every check family shares."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

#: Default time limit of one connection attempt.
DEFAULT_TIMEOUT_S = 5.0


class Status(enum.StrEnum):
    """Outcome of one check, worst last."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: Status
    detail: str
    #: What to do about a WARN or FAIL (empty when OK).
    fix: str = ""


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.FAIL, detail, fix)


def redact(url: str) -> str:
    """`url` with its password replaced by `***`."""
    try:
        parts = urlsplit(url)
        if not parts.password:
            return url
        netloc = parts.netloc.rsplit("@", 1)
        user = (parts.username or "") + ":***"
        return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))
    except ValueError:
        return "<unparsable URL>"


def error_text(exc: BaseException) -> str:
    """The exception's type and the first line of its message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
