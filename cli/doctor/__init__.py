"""`reelscribe doctor`: check a deployment before (or while) it runs.

Each check is a small function returning a `Check` (the service checks are
coroutines), so tests and other tools can call them one by one. `run` prints
them as a table and returns the exit code: 1 if any check FAILed.

The checks come in families, one module each: `configuration` (settings, JWT,
analysis provider), `services` (Postgres, migrations, pgvector, Redis, broker)
`host` (models, disk, FFmpeg, caption font) and `memory` (RSS of the
server and worker processes it can see); `report` runs them in order
and renders the table.

Nothing here downloads anything or loads a model: model checks look at the
files a model directory must hold for an offline load.
"""

from cli.doctor.check import DEFAULT_TIMEOUT_S, Check, Status, redact
from cli.doctor.configuration import (
    MIN_JWT_SECRET_BYTES,
    check_analysis,
    check_config,
    check_jwt,
)
from cli.doctor.host import (
    DISK_FAIL_BYTES,
    DISK_WARN_BYTES,
    EMBEDDING_FILES,
    EMBEDDING_WEIGHTS,
    FONT_DIRS,
    check_caption_font,
    check_disk,
    check_embedding_model,
    check_ffmpeg,
    check_whisper_model,
)
from cli.doctor.memory import check_memory, reelscribe_processes
from cli.doctor.report import diagnose, render, run, run_checks
from cli.doctor.services import (
    check_blob_store,
    check_broker,
    check_migrations,
    check_pgvector,
    check_postgres,
    check_redis,
    check_workers,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DISK_FAIL_BYTES",
    "DISK_WARN_BYTES",
    "EMBEDDING_FILES",
    "EMBEDDING_WEIGHTS",
    "FONT_DIRS",
    "MIN_JWT_SECRET_BYTES",
    "Check",
    "Status",
    "check_analysis",
    "check_blob_store",
    "check_broker",
    "check_caption_font",
    "check_config",
    "check_disk",
    "check_embedding_model",
    "check_ffmpeg",
    "check_jwt",
    "check_memory",
    "check_migrations",
    "check_pgvector",
    "check_postgres",
    "check_redis",
    "check_whisper_model",
    "check_workers",
    "diagnose",
    "redact",
    "reelscribe_processes",
    "render",
    "run",
    "run_checks",
]
