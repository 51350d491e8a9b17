"""A damaged copy of the search model's ONNX export, for the repair tests."""

from __future__ import annotations

from pathlib import Path

from reelscribe import embeddings, search_model
from reelscribe.config import get_settings


def damaged_search_copy(cache_dir: Path) -> Path:
    """The installed ONNX copy, copied into `cache_dir` with one byte of its weights
    flipped (same size, wrong SHA-256); its directory."""
    model_dir = Path(embeddings.default_model_dir())
    installed = search_model.prepare(model_dir, get_settings().model_cache_dir)
    target = search_model.cache_target(model_dir, cache_dir)
    target.mkdir(parents=True)
    for name in (search_model.GRAPH, search_model.WEIGHTS, search_model.MANIFEST):
        (target / name).write_bytes((installed / name).read_bytes())
    assert search_model.problem(model_dir, cache_dir) == ""
    weights = target / search_model.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    return target
