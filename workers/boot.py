"""What a worker process checks before it takes any message: its speech models
and its blob store.

A worker with a missing or damaged model would take jobs and fail each one (or,
worse, load a truncated file); it refuses to start instead, with the message
`reelscribe doctor` shows (`reelscribe.speech_models.check_installed`) naming
the file and the fix, and exit status `EX_CONFIG`, which `workers.supervisor`
does not restart (restarting cannot repair a file).

Every worker process checks for itself, in full (size and SHA-256 of every
joined `model.bin`): Dramatiq's main process never imports our code, so there
is no once-per-group place to do it, and hashing the 145 MB base model costs
about 0.3 s, next to several seconds of imports and a model load per process.
A base model not yet joined into the cache is joined here (first use).
"""

from __future__ import annotations

import sys

import structlog

from reelscribe import speech_models
from reelscribe.blobs import open_blob_store
from reelscribe.config import Settings
from reelscribe.errors import Unavailable
from workers.supervisor import EX_CONFIG


def check_models(settings: Settings) -> None:
    """Exit with `EX_CONFIG` and the reason on stderr unless every installed
    speech model (the default among them) is intact."""
    try:
        speech_models.check_installed(settings.whisper_model_name, settings.model_cache_dir)
    except speech_models.ModelError as exc:
        print(f"reelscribe worker refuses to start: {exc.message}", file=sys.stderr, flush=True)
        raise SystemExit(EX_CONFIG) from None


def check_blob_store(settings: Settings) -> None:
    """Exit with `EX_CONFIG` when the blob store refuses this configuration
    (credentials, bucket: the message names the setting). A store that cannot
    be reached yet is only logged: stages that need it retry until it is back."""
    from reelscribe.s3store import S3ConfigError

    try:
        open_blob_store(settings).check()
    except S3ConfigError as exc:
        print(f"reelscribe worker refuses to start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(EX_CONFIG) from None
    except Unavailable as exc:
        structlog.get_logger(__name__).warning("blob store unreachable", error=exc.message)
