"""The search embedder: ONNX Runtime against sentence-transformers on torch.

    .venv/bin/python -m bench.embedder [--minutes 10.65] [--rounds 2] [--note ...] [--record]

Embeds the passages a job on the generated lecture indexes (`bench.lecture`
text cut into sentences as segments, plus the windows `reelscribe.db.search.passages`
adds) with the shipped embedder (`reelscribe.embeddings`, ONNX Runtime,
`search_model_threads` threads) and with the embedder it replaced
(sentence-transformers on torch with torch's default threads, batch 64), in
one process, alternating, best of `--rounds`. Reports wall and CPU seconds
and the lowest cosine between the two vectors of a passage.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from datetime import date

import numpy as np

from bench.lecture import lecture_text
from bench.record import record
from reelscribe import embeddings
from reelscribe.config import get_settings
from reelscribe.db.search import passages


def _timed(fn: object, texts: list[str]) -> tuple[float, float, np.ndarray]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    vectors = np.asarray(fn(texts))  # type: ignore[operator]
    return time.perf_counter() - wall0, time.process_time() - cpu0, vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.65)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--note", default="")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()

    sentences = [s for s in re.split(r"(?<=[.?!])\s+", lecture_text(args.minutes)) if s.strip()]
    texts = [p.text for p in passages([(i, i + 1.0, s) for i, s in enumerate(sentences)])]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    onnx = embeddings.get_embedder()
    reference = SentenceTransformer(
        embeddings.default_model_dir(), device="cpu", local_files_only=True
    )

    def before(batch: list[str]) -> np.ndarray:
        return np.asarray(reference.encode(batch, batch_size=64, normalize_embeddings=True))

    onnx.embed(texts[:4])
    before(texts[:4])
    best: dict[str, tuple[float, float]] = {}
    cosine = 1.0
    for _ in range(args.rounds):
        wall, cpu, ours = _timed(onnx.embed, texts)
        best["onnx"] = min(best.get("onnx", (wall, cpu)), (wall, cpu))
        wall, cpu, theirs = _timed(before, texts)
        best["torch"] = min(best.get("torch", (wall, cpu)), (wall, cpu))
        cosine = min(cosine, float((ours * theirs).sum(axis=1).min()))
    threads = get_settings().search_model_threads
    rows = [
        ("passages (lecture segments and 3-segment windows)", str(len(texts))),
        (
            f"ONNX Runtime, {threads} thread (shipped)",
            f"{best['onnx'][0]:.2f} s wall, {best['onnx'][1]:.2f} CPU-s",
        ),
        (
            f"baseline: sentence-transformers on torch, {torch.get_num_threads()} threads (before)",
            f"{best['torch'][0]:.2f} s wall, {best['torch'][1]:.2f} CPU-s",
        ),
        ("lowest cosine between the two embedders' vectors", f"{cosine:.7f}"),
    ]
    if args.note:
        rows.append(("note", args.note))
    for name, value in rows:
        print(f"{name:<72} {value}")
    if args.record:
        cores = os.cpu_count() or 1
        record(
            "embedder",
            title="Search embedder: ONNX Runtime vs sentence-transformers",
            command=" ".join(
                ["python -m bench.embedder", *(a for a in sys.argv[1:] if a != "--record")]
            ),
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings=(
                f"the {args.minutes:g}-minute lecture's passages; "
                f"best of {args.rounds} rounds, alternating"
            ),
            rows=rows,
        )


if __name__ == "__main__":
    main()
