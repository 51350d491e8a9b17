"""Give the heap's free pages back to the kernel after each message.

A long job's stages allocate and free hundreds of MB (decoded audio, the voice
detector's and Whisper's scratch buffers, passages to embed). glibc keeps
freed memory in the process for reuse, so a worker process stays at its
largest job's peak for the rest of its life. `malloc_trim(0)` after each
message returns the free pages (measured in `bench.memory`: after a tiny.en
job on a 10-minute lecture; a few ms per call, no CPU cost that the benchmark
can see). Only where the C library is glibc; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

import dramatiq


@functools.cache
def malloc_trim() -> Any:
    """glibc's `malloc_trim`, or None when the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


class TrimHeap(dramatiq.Middleware):
    """After every message (done, failed or skipped), `malloc_trim(0)`."""

    def __init__(self) -> None:
        self._trim = malloc_trim()

    @property
    def available(self) -> bool:
        """Whether this C library can trim (glibc)."""
        return self._trim is not None

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if self._trim is not None:
            self._trim(0)

    after_skip_message = after_process_message
