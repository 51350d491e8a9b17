"""The ONNX search embedder gives sentence-transformers' vectors, and its
exported copy is checked and remade when damaged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reelscribe import embeddings, search_model
from tests.support.search_model import damaged_search_copy

ROOT = Path(__file__).resolve().parents[1]

#: Real sentences of the kinds the index holds: transcript segments, windows of
#: several segments, a long one past the 256-token cut, other languages and
#: scripts, stray whitespace and an empty string.
SENTENCES = [
    "The ocean covers about seventy percent of the planet's surface.",
    "Waves are made by the wind blowing over the water.",
    "  So today we are going to talk about photosynthesis.  ",
    "Die Katze schläft auf dem warmen Fensterbrett.",
    "El tren sale de la estación a las nueve y media.",
    "香港的天氣今天很熱。",
    "Right, okay.",
    "",
    " ".join(["The lecture continues with a long review of the previous week's material."] * 40),
    "Question: what did the speaker say about renewable energy and its costs over time?",
]


def test_vectors_match_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    model_dir = embeddings.default_model_dir()
    reference = SentenceTransformer(model_dir, device="cpu", local_files_only=True).encode(
        SENTENCES, normalize_embeddings=True, show_progress_bar=False
    )
    ours = embeddings.get_embedder().embed(SENTENCES)
    assert ours.shape == (len(SENTENCES), embeddings.DIMENSION)
    assert ours.dtype == np.float32
    cosines = (ours * reference).sum(axis=1)
    assert cosines.min() >= 0.9999, dict(zip(SENTENCES, cosines.round(6).tolist(), strict=True))
    # Alone or in a batch (padding to another text's length), the same vector.
    alone = np.stack([embeddings.get_embedder().embed([s])[0] for s in SENTENCES[:3]])
    assert np.allclose(alone, ours[:3], atol=1e-5)
    # The long text was cut at 256 tokens, as sentence-transformers cuts it.
    assert search_model.text_config(Path(model_dir)).max_tokens == 256


def test_each_inference_call_stays_within_the_token_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The budget bounds a call's scratch memory (ONNX Runtime holds every
    # layer's activations of a call): many passages of mixed lengths are cut
    # into calls of at most MAX_BATCH texts and TOKEN_BUDGET padded tokens
    # (a single text longer than the budget goes alone), and every row is
    # the vector the text gets on its own.
    embedder = embeddings.get_embedder()
    short = [s for s in SENTENCES if len(s) < 100]
    texts = short * 2 + [" ".join(short[: k % len(short) + 1]) * k for k in range(1, 12)]
    calls: list[tuple[int, int]] = []
    pooled = embedder._pooled  # type: ignore[attr-defined]

    def spy(encodings: list[object], tokens: int) -> np.ndarray:
        calls.append((len(encodings), tokens))
        return pooled(encodings, tokens)  # type: ignore[no-any-return]

    monkeypatch.setattr(embedder, "_pooled", spy)
    together = embedder.embed(texts)
    assert sum(n for n, _ in calls) == len(texts)
    # Both bounds were at work: short texts several to a call, long ones fewer.
    assert any(n == embeddings.MAX_BATCH for n, _ in calls)
    assert any(1 < n < embeddings.MAX_BATCH for n, _ in calls)
    for n, tokens in calls:
        assert n <= embeddings.MAX_BATCH
        assert n == 1 or n * tokens <= embeddings.TOKEN_BUDGET, calls
    monkeypatch.undo()
    alone = np.stack([embedder.embed([t])[0] for t in texts[::7]])
    assert np.allclose(alone, together[::7], atol=1e-6)


def test_a_damaged_copy_is_seen(tmp_path: Path) -> None:
    # (`reelscribe models --install` exporting it again: tests/test_models.py.)
    model_dir = Path(embeddings.default_model_dir())
    target = damaged_search_copy(tmp_path)
    assert "SHA-256" in search_model.problem(model_dir, tmp_path)
    (target / search_model.MANIFEST).write_text("{")
    assert "unreadable" in search_model.problem(model_dir, tmp_path)
    (target / search_model.MANIFEST).unlink()
    assert "not prepared" in search_model.problem(model_dir, tmp_path)


def test_a_model_with_other_pooling_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(search_model.SearchModelError, match="pooling_mode_cls_token"):
        search_model.prepare(tmp_path, tmp_path / "cache")


def test_embedding_loads_no_torch() -> None:
    code = (
        "import sys\n"
        "from reelscribe import embeddings\n"
        "embeddings.get_embedder().embed(['hello'])\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=dict(os.environ),
        timeout=120,
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
