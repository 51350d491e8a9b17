"""Heavy modules stay out of processes until they are needed.

torch and the voice encoder (resemblyzer, librosa) add hundreds of MB to a
process (BENCHMARKS.md, `bench.memory`): importing the server or the worker must
not pull them in; workers load them on their first diarization. The search
model runs under ONNX Runtime without torch (tests/test_embeddings.py), loaded
by the server on the first query that needs it, by workers on their first
indexing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sentence_transformers", "transformers", "resemblyzer", "librosa")


def _heavy_after(imports: str, env: dict[str, str] | None = None) -> list[str]:
    """The heavy modules a fresh interpreter holds after `imports`."""
    report = f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    code = f"import sys, json\n{imports}\n{report}"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
    ).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("imports", "env"),
    [
        ("import server.process, server.app", None),
        # The broker is only configured, never contacted, by importing the actors.
        ("import workers.actors", {"REELSCRIBE_REDIS_URL": "redis://127.0.0.1:1/0"}),
    ],
    ids=["server", "worker"],
)
def test_importing_loads_no_model_runtime(imports: str, env: dict[str, str] | None) -> None:
    assert _heavy_after(imports, env) == []


def test_the_check_sees_a_heavy_import() -> None:
    # The probe itself can fail: importing the embedder's runtime is seen.
    assert _heavy_after("import torch") == ["torch"]


def test_trim_heap_returns_freed_memory_to_the_kernel() -> None:
    # A fragmented heap, as a long job leaves it: 1 MB blocks served from the heap
    # (glibc raised its mmap threshold after a larger block was freed), each pinned
    # in place by a small live block after it, then the big ones freed.
    code = (
        "import numpy as np, psutil\n"
        "from workers.heap import TrimHeap\n"
        "me = psutil.Process()\n"
        "block = np.ones(8 << 20, dtype=np.uint8)\n"
        "del block  # a freed mmap-ed block: glibc raises its mmap threshold\n"
        "big, pins = [], []\n"
        "for _ in range(300):\n"
        "    big.append(np.ones(1 << 20, dtype=np.uint8))\n"
        "    pins.append(bytes(4096))  # past pymalloc's 512 bytes: from malloc\n"
        "del big\n"
        "before = me.memory_info().rss\n"
        "trim = TrimHeap()\n"
        "assert trim.available\n"
        "trim.after_process_message(None, None)\n"
        "print((before - me.memory_info().rss) >> 20)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "REELSCRIBE_REDIS_URL": "redis://127.0.0.1:1/0"},
        timeout=120,
    ).stdout
    returned_mb = int(out.strip().splitlines()[-1])
    assert returned_mb >= 200, f"malloc_trim returned only {returned_mb} MB of 300"
