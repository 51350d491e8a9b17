"""Polling until something holds (a worker answers, a delivery arrives, a job moves)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_for(
    check: Callable[[], Any | Awaitable[Any]],
    timeout_s: float = 20.0,
    interval_s: float = 0.2,
    what: str = "condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> Any:
    """Call `check` (plain or async) until it returns something truthy; return that.

    Exceptions of the types in `ignore` count as "not yet" (say, OSError while
    a server is still starting). Fails the test after `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
        except ignore:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(interval_s)
