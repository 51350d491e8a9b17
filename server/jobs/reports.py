"""Reports about jobs: usage against the plan, costs per day, webhook deliveries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from reelscribe import validation
from reelscribe.auth import Principal
from reelscribe.db import costs as costs_db
from reelscribe.db import webhooks as webhooks_db
from reelscribe.errors import InvalidArgument
from reelscribe.v1 import job_service_pb2
from server import pagination
from server.deps import Deps
from server.jobs.records import visible_job
from server.quotas import Quotas

#: Longest period one cost report covers.
MAX_REPORT_DAYS = 366


class JobReports:
    """GetUsage, GetCostReport and ListWebhookDeliveries."""

    def __init__(self, deps: Deps, quotas: Quotas) -> None:
        self._deps = deps
        self._quotas = quotas

    async def usage(self, principal: Principal) -> job_service_pb2.GetUsageResponse:
        """The caller's usage against their plan."""
        async with self._deps.pool.acquire() as conn:
            reply = await self._quotas.usage(conn, principal)
            reply.stored_bytes, reply.max_stored_bytes = await self._quotas.storage_usage(
                conn, principal
            )
        return reply

    async def costs(
        self, principal: Principal, request: job_service_pb2.GetCostReportRequest
    ) -> job_service_pb2.GetCostReportResponse:
        """The caller's costs per UTC day (the last 30 days unless asked otherwise)."""
        today = datetime.now(UTC).date()
        first = _parse_day(request.start_date, "start_date", today - timedelta(days=30))
        last = _parse_day(request.end_date, "end_date", today)
        if first > last:
            raise InvalidArgument.field("start_date", "must not be after end_date")
        if (last - first).days >= MAX_REPORT_DAYS:
            raise InvalidArgument.field("start_date", f"at most {MAX_REPORT_DAYS} days at once")
        async with self._deps.pool.acquire() as conn:
            rows = await costs_db.daily_costs(
                conn,
                principal.subject,
                first,
                last,
                per_audio_minute_usd=self._deps.settings.price_per_audio_minute_usd,
            )
        days = [
            job_service_pb2.DailyCost(
                date=r["day"].isoformat(),
                audio_minutes=float(r["audio_minutes"]),
                cpu_seconds=float(r["cpu_seconds"]),
                provider_tokens=int(r["tokens"]),
                cost_usd=float(r["cost_usd"]),
            )
            for r in rows
        ]
        return job_service_pb2.GetCostReportResponse(
            days=days, total_cost_usd=sum(d.cost_usd for d in days)
        )

    async def webhook_deliveries(
        self, principal: Principal, request: job_service_pb2.ListWebhookDeliveriesRequest
    ) -> job_service_pb2.ListWebhookDeliveriesResponse:
        """A page of every attempt to deliver the job's webhooks, oldest first."""
        row = await visible_job(self._deps.pool, principal, request.name)
        size = pagination.page_size(request.page_size, default=100)
        after = _delivery_position(request.page_token)
        async with self._deps.pool.acquire() as conn:
            rows = await webhooks_db.list_attempts(conn, row["id"], after=after, limit=size + 1)
        reply = job_service_pb2.ListWebhookDeliveriesResponse()
        for r in rows[:size]:
            delivery = job_service_pb2.WebhookDelivery(
                event_seq=r["event_seq"],
                attempt=r["attempt"],
                http_status=r["http_status"],
                delivered=r["delivered"],
                error=r["error"],
            )
            delivery.time.FromDatetime(r["time"])
            reply.deliveries.append(delivery)
        if len(rows) > size:
            last = rows[size - 1]
            reply.next_page_token = f"{last['event_seq']}:{last['attempt']}"
        return reply


def _delivery_position(token: str) -> tuple[int, int]:
    """The (event_seq, attempt) a `ListWebhookDeliveries` page token continues after."""
    if not token:
        return (0, 0)
    seq, sep, attempt = token.partition(":")
    if not sep:
        raise InvalidArgument.field("page_token", "malformed page token")
    # The columns are a bigint and an integer: larger numbers cannot be positions.
    return (
        validation.ascii_int(seq, "page_token"),
        validation.ascii_int(attempt, "page_token", maximum=validation.INT32_MAX),
    )


def _parse_day(value: str, field: str, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidArgument.field(field, "a UTC day as YYYY-MM-DD") from exc
