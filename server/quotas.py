"""Plans and quotas: how much a user may store and process.

The plan comes from the token's `plan` claim. `free` users keep at most
`free_max_stored_jobs` jobs and process at most `free_audio_minutes_per_day`
minutes of audio per UTC day, and store at most `free_max_stored_bytes` (media
and uploads in progress); `premium` (and admins) are unlimited.
"""

from __future__ import annotations

import asyncpg

from reelscribe.auth import Principal
from reelscribe.config import Settings
from reelscribe.db import jobs as jobs_db
from reelscribe.db import storage as storage_db
from reelscribe.errors import QuotaViolation, ResourceExhausted
from reelscribe.v1 import job_service_pb2


class Quotas:
    """Reads usage and enforces plan limits."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _limits(self, principal: Principal) -> tuple[int, float]:
        if principal.is_admin or principal.plan != "free":
            return 0, 0.0
        return self._settings.free_max_stored_jobs, self._settings.free_audio_minutes_per_day

    async def usage(
        self, conn: asyncpg.Connection, principal: Principal
    ) -> job_service_pb2.GetUsageResponse:
        """The caller's usage against their plan."""
        stored_jobs, minutes_today = await jobs_db.owner_usage(conn, principal.subject)
        max_jobs, max_minutes = self._limits(principal)
        return job_service_pb2.GetUsageResponse(
            plan="admin" if principal.is_admin else principal.plan,
            stored_jobs=stored_jobs,
            max_stored_jobs=max_jobs,
            audio_minutes_today=minutes_today,
            max_audio_minutes_per_day=max_minutes,
        )

    async def check_new_job(
        self, conn: asyncpg.Connection, principal: Principal, media_duration_s: float
    ) -> None:
        """Refuse a job that would exceed the caller's plan."""
        max_jobs, max_minutes = self._limits(principal)
        if not max_jobs and not max_minutes:
            return
        usage = await self.usage(conn, principal)
        violations: list[QuotaViolation] = []
        subject = f"user:{principal.subject}"
        if max_jobs and usage.stored_jobs >= max_jobs:
            violations.append(
                QuotaViolation(
                    subject, f"stored jobs: {usage.stored_jobs} of {max_jobs}; delete some"
                )
            )
        minutes = usage.audio_minutes_today + media_duration_s / 60
        if max_minutes and minutes > max_minutes:
            violations.append(
                QuotaViolation(
                    subject, f"audio minutes today: {minutes:.1f} would exceed {max_minutes:g}"
                )
            )
        if violations:
            raise ResourceExhausted(
                "; ".join(v.description for v in violations) + f" (plan {usage.plan})",
                reason="QUOTA_EXCEEDED",
                quota_violations=violations,
            )

    # -- storage -----------------------------------------------------------------------

    def max_stored_bytes(self, principal: Principal) -> int:
        """The caller's storage limit in bytes; 0 = unlimited."""
        if principal.is_admin or principal.plan != "free":
            return 0
        return self._settings.free_max_stored_bytes

    async def storage_usage(
        self, conn: asyncpg.Connection, principal: Principal
    ) -> tuple[int, int]:
        """Bytes the caller stores (media and uploads in progress), and their limit."""
        stored = await storage_db.stored_bytes(conn, principal.subject)
        return stored, self.max_stored_bytes(principal)

    async def check_storage(
        self, conn: asyncpg.Connection, principal: Principal, upload_id: str, size_bytes: int
    ) -> None:
        """Refuse a new upload of `size_bytes` that would exceed the caller's storage limit.

        Call inside the transaction that records the upload: the owner's lock is
        held until it commits, so concurrent uploads are checked one at a time
        and each sees the others' reservations.
        """
        limit = self.max_stored_bytes(principal)
        if not limit:
            return
        await storage_db.lock_owner(conn, principal.subject)
        stored = await storage_db.stored_bytes(conn, principal.subject, except_upload=upload_id)
        if stored + size_bytes > limit:
            raise ResourceExhausted(
                f"storing {size_bytes} more bytes would exceed the storage limit of {limit} "
                f"bytes ({stored} stored, plan {principal.plan}); delete media you no longer "
                "need (DeleteMedia)",
                reason="STORAGE_QUOTA_EXCEEDED",
                quota_violations=[
                    QuotaViolation(
                        f"user:{principal.subject}",
                        f"stored bytes: {stored} + {size_bytes} would exceed {limit}",
                    )
                ],
            )
