"""Plans and quotas: how much a user may store and process.

The plan comes from the token's `plan` claim. `free` users keep at most
`free_max_stored_jobs` jobs and process at most `free_audio_minutes_per_day`
minutes of audio per UTC day, and store at most `free_max_stored_bytes` (media
and uploads in progress); `premium` (and admins) are unlimited.

Minutes are read from the usage ledger (`reelscribe.db.usage`): what jobs
transcribed, plus what running jobs have reserved. `admit` runs inside the
transaction that creates the job, under the owner's advisory lock, so
concurrent creations by one owner are decided one after another.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from reelscribe.auth import Principal
from reelscribe.config import Settings
from reelscribe.db import jobs as jobs_db
from reelscribe.db import storage as storage_db
from reelscribe.db import usage as usage_db
from reelscribe.errors import QuotaViolation, ResourceExhausted
from reelscribe.v1 import job_service_pb2


@dataclass(frozen=True)
class Limits:
    """One caller's plan limits (0: unlimited)."""

    max_stored_jobs: int
    audio_minutes_per_day: float

    @property
    def allowance_s(self) -> float | None:
        """Seconds of audio per day, None when unlimited."""
        return self.audio_minutes_per_day * 60 if self.audio_minutes_per_day else None


class Quotas:
    """Reads usage and enforces plan limits."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def limits(self, principal: Principal) -> Limits:
        """The limits of the caller's plan."""
        if principal.is_admin or principal.plan != "free":
            return Limits(0, 0.0)
        return Limits(
            self._settings.free_max_stored_jobs, self._settings.free_audio_minutes_per_day
        )

    async def usage(
        self, conn: asyncpg.Connection, principal: Principal
    ) -> job_service_pb2.GetUsageResponse:
        """The caller's usage against their plan."""
        stored_jobs = await jobs_db.count_jobs(conn, principal.subject)
        seconds_today = await usage_db.seconds_today(conn, principal.subject)
        limits = self.limits(principal)
        return job_service_pb2.GetUsageResponse(
            plan="admin" if principal.is_admin else principal.plan,
            stored_jobs=stored_jobs,
            max_stored_jobs=limits.max_stored_jobs,
            audio_minutes_today=seconds_today / 60,
            max_audio_minutes_per_day=limits.audio_minutes_per_day,
        )

    async def admit(
        self, conn: asyncpg.Connection, principal: Principal, *, reserve_s: float | None
    ) -> None:
        """Refuse a new job that would exceed the caller's plan.

        Call inside the transaction that inserts the job. `reserve_s` is what
        the job will reserve (its probed length; 0 when unknown, as for URL
        sources, which are then admitted only while minutes are left), or None
        for a job that transcribes nothing (a cache hit, a child job).
        """
        limits = self.limits(principal)
        if not limits.max_stored_jobs and not limits.audio_minutes_per_day:
            return
        await usage_db.lock_owner(conn, principal.subject)
        usage = await self.usage(conn, principal)
        violations: list[QuotaViolation] = []
        subject = f"user:{principal.subject}"
        if limits.max_stored_jobs and usage.stored_jobs >= limits.max_stored_jobs:
            violations.append(
                QuotaViolation(
                    subject,
                    f"stored jobs: {usage.stored_jobs} of {limits.max_stored_jobs}; delete some",
                )
            )
        max_minutes = limits.audio_minutes_per_day
        if max_minutes and reserve_s is not None:
            used = usage.audio_minutes_today
            if used >= max_minutes:
                violations.append(
                    QuotaViolation(
                        subject, f"audio minutes today: {used:.1f} of {max_minutes:g} used"
                    )
                )
            elif used + reserve_s / 60 > max_minutes:
                violations.append(
                    QuotaViolation(
                        subject,
                        f"audio minutes today: {used + reserve_s / 60:.1f} would exceed "
                        f"{max_minutes:g}",
                    )
                )
        if violations:
            raise ResourceExhausted(
                "; ".join(v.description for v in violations) + f" (plan {usage.plan})",
                reason="QUOTA_EXCEEDED",
                quota_violations=violations,
            )

    async def reserve(
        self, conn: asyncpg.Connection, principal: Principal, job_id: uuid.UUID, reserve_s: float
    ) -> None:
        """Open the ledger row of a job that will transcribe, in its creating transaction."""
        await usage_db.reserve(
            conn,
            job_id=job_id,
            owner=principal.subject,
            reserved_s=reserve_s,
            allowance_s=self.limits(principal).allowance_s,
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
