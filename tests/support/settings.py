"""Settings of the stacks the tests start (the session stack and the drills' own)."""

from __future__ import annotations

from pathlib import Path

from reelscribe.config import Settings
from tests.support.tokens import JWT_SECRET

#: The only non-public network URL sources may reach in tests: the test media
#: servers listen on 127.0.0.2.
URL_TEST_NETWORK = "127.0.0.2/32"
#: The one other origin whose pages may call the test server's gRPC-Web listener.
WEB_TEST_ORIGIN = "http://console.test:5173"
#: The key test workers sign webhooks with.
WEBHOOK_SECRET = "webhook-test-secret"


def stack_settings(
    *, database_url: str, redis_url: str, data_dir: Path, queue_name: str, **overrides: object
) -> Settings:
    """Settings for a test server: fast heartbeats and progress, generous rate limits,
    an OS-chosen port and no metrics endpoint (those are tested on servers of their own)."""
    fields: dict[str, object] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "data_dir": data_dir,
        "jwt_secret": JWT_SECRET,
        "listen_address": "127.0.0.1:0",
        "queue_name": queue_name,
        "watch_heartbeat_s": 1.0,
        "watch_buffer_events": 16,
        "rate_limit_per_s": 1000.0,
        "rate_limit_burst": 1000,
        "rate_limits": {},
        "progress_min_interval_s": 0.05,
        "metrics_port": 0,
        # English test speech: the fast English model, so the suite stays short.
        # Tests of other languages ask for `base` per job.
        "whisper_model_name": "tiny.en",
        **overrides,
    }
    return Settings(**fields)  # type: ignore[arg-type]
