"""Doctor check of memory: the resident set size (RSS) of each Reelscribe server
and worker process this host lets the doctor see.

Processes are recognised by their command line, as `reelscribe up`,
`reelscribe server` and `reelscribe worker` start them (`cli.stack`): a server
is `python -m server` (or `reelscribe server`/`up`), a worker is a process of
`dramatiq workers.actors` whose parent runs the same command and which has
CTranslate2 mapped (Dramatiq's main process only forks and watches, and its
other forks serve metrics; neither loads a model). Figures are read
from the kernel (`psutil`), never estimated; when no process is visible, the
check says so and reports only its own size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from cli.doctor.check import Check, ok

#: Bytes per MB as shown (MiB, as `ps` and `top` count).
MIB = 1024**2


@dataclass(frozen=True)
class ProcessMemory:
    """One process's role, id and resident set size."""

    role: str
    pid: int
    rss_bytes: int


def _role(proc: psutil.Process) -> str | None:
    """`server`, `worker`, `dramatiq main`, `dramatiq fork` or None (not ours)."""
    try:
        cmd = proc.cmdline()
    except (psutil.Error, OSError):
        return None
    if len(cmd) >= 3 and cmd[1:3] == ["-m", "server"]:
        return "server"
    if any(arg.endswith("reelscribe") for arg in cmd[:2]) and ("server" in cmd or "up" in cmd):
        return "server"
    if "dramatiq" in cmd and "workers.actors" in cmd:
        try:
            parent = proc.parent()
            forked = parent is not None and parent.cmdline() == cmd
        except (psutil.Error, OSError):
            forked = False
        if not forked:
            return "dramatiq main"
        # Dramatiq also forks helper processes with the same command line (the
        # metrics endpoint); only worker processes import the transcriber,
        # which maps CTranslate2.
        return "worker" if _maps(proc.pid, "ctranslate2") else "dramatiq fork"
    return None


def _maps(pid: int, library: str) -> bool:
    """Whether process `pid` has `library` mapped (True when that cannot be read)."""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
            return any(library in line for line in maps)
    except OSError:
        return True


def reelscribe_processes(candidates: Iterable[psutil.Process] | None = None) -> list[ProcessMemory]:
    """Every visible server and worker process with its RSS, by role then pid."""
    found = []
    for proc in candidates if candidates is not None else psutil.process_iter():
        role = _role(proc)
        if role is None:
            continue
        try:
            found.append(ProcessMemory(role, proc.pid, proc.memory_info().rss))
        except (psutil.Error, OSError):
            continue  # gone or not ours to read
    return sorted(found, key=lambda p: (p.role, p.pid))


def check_memory(candidates: Iterable[psutil.Process] | None = None) -> Check:
    """Informational: RSS of each Reelscribe process on this host, or of the doctor itself."""
    found = reelscribe_processes(candidates)
    if not found:
        own = psutil.Process().memory_info().rss
        return ok(
            "memory",
            "no server or worker process visible on this host; "
            f"this doctor: {own / MIB:.0f} MB RSS",
        )
    return ok(
        "memory",
        "; ".join(f"{p.role} {p.pid}: {p.rss_bytes / MIB:.0f} MB RSS" for p in found),
    )
