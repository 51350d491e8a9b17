"""Keeps a Dramatiq worker group running: `python -m workers.supervisor -- CMD...`.

Dramatiq's main process stops its whole group when one worker process dies
("exited unexpectedly ... Shutting down"): one file that crashes the decoder
would otherwise stop all processing until someone restarts the worker by hand.
The supervisor runs the group as its child, restarts it (after a short,
growing pause) whenever it ends without being asked to, and passes
SIGTERM/SIGINT on once, so running stages still get their shutdown grace.
Messages of the processes that died are redelivered by the broker. A group
that exits with `EX_CONFIG` (a worker refused to start because a model is
missing or damaged) is not restarted: it would only fail again.

The group stays in the supervisor's process group, so whoever stops the
supervisor for good (`reelscribe up` after the grace, a container runtime)
reaches every process with one `killpg`. The supervisor is the group's child
subreaper (Linux), so when the group's main process dies its orphaned worker
processes become the supervisor's children, and are killed before the next
group starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

#: Exit status of a worker that refuses to start for its configuration (its
#: models, see `workers.boot`; sysexits.h `EX_CONFIG`): not restarted.
EX_CONFIG = 78

#: Pauses before successive restarts; the last repeats.
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
#: A group that ran this long before dying starts the backoff afresh.
STABLE_AFTER_S = 60.0
_PR_SET_CHILD_SUBREAPER = 36


#: glibc malloc settings for the worker processes, where the environment sets
#: none of its own. Two arenas instead of up to eight per core: the threads a
#: stage starts (the voice detector's, ONNX Runtime's, Dramatiq's) each took an
#: arena of their own, which kept its freed pages in pieces `malloc_trim` could
#: not return. Measured on a 10-minute lecture (BENCHMARKS.md, "Memory per
#: process"): the process held about 40-50 MB less after the job, at the same CPU.
MALLOC_DEFAULTS = {"MALLOC_ARENA_MAX": "2"}


def worker_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with `MALLOC_DEFAULTS` for what it does not set itself."""
    return {**MALLOC_DEFAULTS, **environ}


class Supervisor:
    """Runs `command` until told to stop, restarting it when it dies."""

    def __init__(
        self, command: Sequence[str], *, backoff_s: Sequence[float] = RESTART_BACKOFF_S
    ) -> None:
        self._command = list(command)
        self._backoff_s = tuple(backoff_s)
        self._stop = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        #: Restarts so far (for logs and tests).
        self.restarts = 0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop for good: the group gets `sig` once and its own grace."""
        first = not self._stop.is_set()
        self._stop.set()
        child = self._child
        if first and child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(sig)

    def run(self) -> int:
        """Supervise until `stop`; returns the group's last exit code."""
        _become_subreaper()
        failures = 0
        while True:
            started = time.monotonic()
            self._child = subprocess.Popen(self._command, env=worker_environ(os.environ))
            if self._stop.is_set():  # told to stop while the child was starting
                self._child.send_signal(signal.SIGTERM)
            code = self._child.wait()
            # Leftovers of a group whose main process died (its worker
            # processes) must not run beside the next group.
            _kill_orphans()
            if self._stop.is_set():
                return code
            if code == EX_CONFIG:
                # Its models are missing or damaged (it said which): restarting
                # cannot help, so stop and let the operator see why.
                log.error("worker group refuses to start; not restarting", code=code)
                return code
            failures = 0 if time.monotonic() - started > STABLE_AFTER_S else failures + 1
            pause = self._backoff_s[min(max(failures - 1, 0), len(self._backoff_s) - 1)]
            log.error("worker group exited unexpectedly; restarting", code=code, pause_s=pause)
            if self._stop.wait(pause):
                return code
            self.restarts += 1


def _become_subreaper() -> None:
    """Adopt orphaned descendants (Linux `PR_SET_CHILD_SUBREAPER`); a no-op elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _kill_orphans() -> None:
    """SIGKILL and reap every remaining child: a dead group's orphaned processes."""
    me = str(os.getpid())
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdecimal():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            # After the command name (which may contain spaces): state, ppid, ...
            ppid = stat.rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        if ppid == me:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry), signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(int(entry), 0)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m workers.supervisor -- CMD...`: supervise CMD until SIGTERM or SIGINT."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m workers.supervisor -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    supervisor = Supervisor(args)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: supervisor.stop(signum))
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
