"""Blobs in any S3-compatible object store (AWS S3, MinIO, SeaweedFS, R2...).

The same keys as the local store (`reelscribe.blobs`), each under the
configured bucket. Large files go up as multipart uploads (boto3's transfer
manager, parts of `MULTIPART_PART_BYTES`); reads are ranged GETs, so a worker
fetches only the part of a job's audio its chunk covers and ReadClip streams a
clip from any offset. Servers and workers that use this store share no disk:
what one machine stored, any other reads.

Errors are translated at this boundary: an unreachable store is
`Unavailable` (callers retry; running jobs wait and resume), refused
credentials or a missing bucket is `S3ConfigError`, which names the setting.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import structlog

from reelscribe.errors import Unavailable

log = structlog.get_logger(__name__)
T = TypeVar("T")
#: Longest pause between two tries while waiting out an outage.
_MAX_OUTAGE_DELAY_S = 10.0

#: Part size of multipart uploads (S3's minimum is 5 MiB).
MULTIPART_PART_BYTES = 16 * 1024 * 1024
#: How long a presigned GET URL (handed to FFmpeg) stays valid.
PRESIGNED_TTL_S = 3600
#: Bytes per read of a streamed object.
STREAM_BLOCK_BYTES = 1024 * 1024


class S3ConfigError(RuntimeError):
    """The store refuses this configuration (credentials, bucket); names the setting."""


class S3BlobStore:
    """Blobs as objects in one bucket."""

    #: Blobs are not files on this machine: readers fetch what they need.
    is_local = False

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str = "",
        region: str = "us-east-1",
        access_key_id: str = "",
        secret_access_key: str = "",
        timeout_s: float = 30.0,
        outage_wait_s: float = 0.0,
    ) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = bucket
        self._outage_wait_s = outage_wait_s
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=Config(
                connect_timeout=timeout_s,
                read_timeout=timeout_s,
                retries={"max_attempts": 3, "mode": "standard"},
                # Path-style addressing: self-hosted stores have no per-bucket DNS names.
                s3={"addressing_style": "path"},
                signature_version="s3v4",
            ),
        )
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_PART_BYTES,
            multipart_chunksize=MULTIPART_PART_BYTES,
            use_threads=False,
        )

    # -- keys ------------------------------------------------------------------

    @staticmethod
    def media_key(owner: str, media_id: Any) -> str:
        """Key of an uploaded media file (the same as the local store's)."""
        from reelscribe.blobs import owner_prefix

        return f"{owner_prefix(owner)}/media/{media_id}"

    # -- writing ---------------------------------------------------------------

    def put_file(self, key: str, src: Path) -> None:
        """Store the file at `src` under `key` (multipart when large), then remove `src`."""
        self._call(
            f"storing {key}",
            lambda: self._client.upload_file(str(src), self.bucket, key, Config=self._transfer),
        )
        src.unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` under `key` in one PUT (small objects)."""
        self._call(
            f"storing {key}",
            lambda: self._client.put_object(Bucket=self.bucket, Key=key, Body=data),
        )

    def get_bytes(self, key: str) -> bytes:
        """The whole (small) object under `key`."""

        def _get() -> bytes:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            with contextlib.closing(body):
                data: bytes = body.read()
            return data

        return self._call(f"reading {key}", _get)

    # -- multipart uploads, step by step (uploads that any server resumes) ------

    def create_multipart(self, key: str) -> str:
        """Start a multipart upload that completes at `key`; returns its id."""
        reply = self._call(
            f"starting an upload to {key}",
            lambda: self._client.create_multipart_upload(Bucket=self.bucket, Key=key),
        )
        return str(reply["UploadId"])

    def upload_part(self, key: str, multipart_id: str, number: int, data: bytes) -> str:
        """Store part `number` (1-based; every part but the last at least 5 MiB); its ETag."""
        reply = self._call(
            f"storing part {number} of {key}",
            lambda: self._client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=multipart_id, PartNumber=number, Body=data
            ),
        )
        return str(reply["ETag"])

    def complete_multipart(self, key: str, multipart_id: str, parts: list[tuple[int, str]]) -> None:
        """Join the parts, (number, ETag) in order, into the object at `key`. Done
        already (the upload is gone, the object there) counts as done."""
        from botocore.exceptions import ClientError

        try:
            self._call(
                f"completing {key}",
                lambda: self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=multipart_id,
                    MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
                ),
            )
        except ClientError as exc:
            if _status(exc) != 404 or self.size(key) is None:
                raise

    def abort_multiparts(self, key: str) -> int:
        """Abort every unfinished multipart upload to `key` (their parts are freed);
        returns how many."""

        def _abort() -> int:
            aborted = 0
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=key
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Key"] == key:
                        self._client.abort_multipart_upload(
                            Bucket=self.bucket, Key=key, UploadId=upload["UploadId"]
                        )
                        aborted += 1
            return aborted

        return self._call(f"aborting uploads to {key}", _abort)

    def delete(self, key: str) -> None:
        """Remove a blob if present."""
        self._call(
            f"deleting {key}", lambda: self._client.delete_object(Bucket=self.bucket, Key=key)
        )

    def delete_keys(self, keys: list[str]) -> None:
        """Remove these blobs (up to 1000) in one request."""
        if keys:
            self._call(
                f"deleting {len(keys)} objects",
                lambda: self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys]}
                ),
            )

    def delete_prefix(self, prefix: str) -> int:
        """Remove every blob whose key starts with `prefix`; returns how many."""

        def _delete() -> int:
            removed = 0
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                    removed += len(keys)
            return removed

        return self._call(f"deleting {prefix}*", _delete)

    # -- reading ---------------------------------------------------------------

    def size(self, key: str) -> int | None:
        """The blob's size in bytes, or None when there is no such blob."""
        from botocore.exceptions import ClientError

        try:
            head = self._call(
                f"reading {key}", lambda: self._client.head_object(Bucket=self.bucket, Key=key)
            )
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise
        return int(head["ContentLength"])

    def download(self, key: str, dest: Path, *, start: int = 0, length: int | None = None) -> int:
        """Write bytes [start, start + length) of the blob into `dest` at the same
        offset (the rest of `dest` stays a hole), creating `dest` if needed;
        returns the bytes written. FileNotFoundError when there is no such blob."""
        from botocore.exceptions import ClientError

        ranged = {"Range": f"bytes={start}-{start + length - 1}"} if length else {}
        if length == 0:
            return 0
        dest.parent.mkdir(parents=True, exist_ok=True)

        def _get() -> int:
            # Whole or again from the start: the bytes go to fixed offsets.
            written = 0
            body = self._client.get_object(Bucket=self.bucket, Key=key, **ranged)["Body"]
            with dest.open("r+b" if dest.exists() else "wb") as out:
                out.seek(start)
                for block in body.iter_chunks(STREAM_BLOCK_BYTES):
                    out.write(block)
                    written += len(block)
            return written

        try:
            return self._call(f"reading {key}", _get)
        except ClientError as exc:
            if _status(exc) == 404:
                raise FileNotFoundError(key) from exc
            raise

    def stream(self, key: str, *, start: int = 0) -> Generator[bytes, None, None]:
        """The blob's bytes from `start`, a block at a time."""
        from botocore.exceptions import ClientError

        try:
            with _translated(f"reading {key}"):
                body = self._client.get_object(
                    Bucket=self.bucket, Key=key, Range=f"bytes={start}-"
                )["Body"]
        except ClientError as exc:
            if _status(exc) in (404, 416):
                raise FileNotFoundError(key) from exc
            raise
        with contextlib.closing(body):
            yield from body.iter_chunks(STREAM_BLOCK_BYTES)

    def media_source(self, key: str) -> str:
        """A presigned URL FFmpeg reads the blob through (byte ranges, in place)."""
        return self.presigned_url(key)

    def presigned_url(self, key: str, ttl_s: int = PRESIGNED_TTL_S) -> str:
        """A URL anyone holding it can GET the blob with, for `ttl_s` seconds."""
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=ttl_s
        )
        return url

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        """`operation`, its connection failures as Unavailable; while the store
        cannot be reached, tried again with backoff for up to `outage_wait_s`
        (workers wait out an outage; servers answer UNAVAILABLE at once)."""
        deadline = time.monotonic() + self._outage_wait_s
        delay_s = 0.5
        while True:
            try:
                with _translated(what):
                    return operation()
            except Unavailable as exc:
                if time.monotonic() + delay_s > deadline:
                    raise
                log.warning("blob store unreachable; waiting", error=exc.message, retry_s=delay_s)
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, _MAX_OUTAGE_DELAY_S)

    # -- checks ----------------------------------------------------------------

    def check(self) -> None:
        """Refuse to run against a store that will not work: S3ConfigError naming
        the setting for refused credentials or a missing bucket, Unavailable when
        the store cannot be reached."""
        from botocore.exceptions import ClientError

        try:
            with _translated("checking the bucket"):
                self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            status = _status(exc)
            if status in (401, 403):
                raise S3ConfigError(
                    "the S3 store refused the credentials in REELSCRIBE_S3_ACCESS_KEY_ID / "
                    "REELSCRIBE_S3_SECRET_ACCESS_KEY"
                ) from exc
            if status == 404:
                raise S3ConfigError(
                    f"the S3 bucket {self.bucket!r} (REELSCRIBE_S3_BUCKET) does not exist"
                ) from exc
            raise

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (the embedded store's first start)."""
        from botocore.exceptions import ClientError

        try:
            self.check()
        except S3ConfigError:
            with _translated("creating the bucket"), contextlib.suppress(ClientError):
                self._client.create_bucket(Bucket=self.bucket)
            self.check()


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """Connection failures and the store's own 5xx answers become Unavailable
    (retryable), with what was being done.

    boto3's transfer manager wraps a failed multipart upload in
    `S3UploadFailedError`; it counts when what it wraps is a connection failure.
    """
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import ClientError

    try:
        yield
    except _connection_errors() as exc:
        raise _unavailable(what) from exc
    except ClientError as exc:
        if _status(exc) >= 500:  # the store is there but failing (stopping, overloaded)
            raise _unavailable(what) from exc
        raise
    except S3UploadFailedError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, _connection_errors()) or (
            isinstance(cause, ClientError) and _status(cause) >= 500
        ):
            raise _unavailable(what) from exc
        raise


def _connection_errors() -> tuple[type[BaseException], ...]:
    from botocore import exceptions as boto
    from urllib3.exceptions import ProtocolError

    return (
        boto.ConnectionError,  # EndpointConnectionError, ConnectionClosedError, timeouts...
        boto.ConnectTimeoutError,
        boto.ReadTimeoutError,
        boto.ResponseStreamingError,
        ProtocolError,
    )


def _unavailable(what: str) -> Unavailable:
    return Unavailable(
        f"the blob store cannot be reached while {what}; try again shortly",
        reason="BLOB_STORE_UNAVAILABLE",
    )
