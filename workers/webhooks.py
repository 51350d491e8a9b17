"""Delivers the webhook outbox: signed POSTs, retried with backoff, every attempt logged.

Deliveries are written in the same transaction as their event, so none is
lost; a worker leases due ones with `FOR UPDATE SKIP LOCKED`, so several
workers never send the same attempt twice. Each job's deliveries go out in
event order: a job's next delivery is leased only once every earlier one was
delivered or given up (`reelscribe.db.webhooks.lease_due`), so however many
workers drain the outbox, a receiver sees one job's events in `seq` order. A
failing receiver never affects the job (it only holds back that job's later
deliveries until it answers or they are given up).
"""

from __future__ import annotations

from typing import Any

import structlog

from reelscribe import fetch, webhooks
from reelscribe.db import webhooks as webhooks_db
from reelscribe.errors import MediaError
from workers.periodic import Periodic
from workers.runtime import Runtime

log = structlog.get_logger(__name__)

#: A leased delivery is retried by anyone after this long (sender crashed mid-POST).
_LEASE_S = 120


async def _lease(rt: Runtime, limit: int = 20) -> list[Any]:
    async with rt.pool.acquire() as conn:
        return await webhooks_db.lease_due(conn, lease_s=_LEASE_S, limit=limit)


async def _record(rt: Runtime, delivery: Any, status: int, error: str) -> None:
    settings = rt.settings
    attempt = delivery["attempts"]
    if 200 <= status < 300:
        state, delay_s = "DELIVERED", 0.0
    elif attempt >= settings.webhook_max_attempts:
        state, delay_s = "FAILED", 0.0
    else:
        state, delay_s = "PENDING", min(settings.webhook_backoff_s * 2 ** (attempt - 1), 600.0)
    async with rt.pool.acquire() as conn:
        await webhooks_db.record_attempt(
            conn, delivery, http_status=status, error=error, state=state, retry_in_s=delay_s
        )


def deliver_due(rt: Runtime) -> int:
    """Send every due delivery once; returns how many were attempted."""
    settings = rt.settings
    secret = settings.resolved_webhook_secret()
    allowed = fetch.parse_networks(settings.url_allowed_networks)
    due = rt.call(_lease(rt))
    for delivery in due:
        body = bytes(delivery["body"])
        headers = {
            "Content-Type": "application/json",
            webhooks.HEADER: webhooks.sign(secret, body),
            "Reelscribe-Delivery": str(delivery["id"]),
        }
        status, error = 0, ""
        try:
            status = fetch.post(
                delivery["url"],
                body,
                headers,
                timeout_s=settings.webhook_timeout_s,
                allowed_networks=allowed,
            )
            if not 200 <= status < 300:
                error = f"receiver answered HTTP {status}"
        except MediaError as exc:
            error = exc.message
        except Exception as exc:  # timeouts, refused connections, TLS errors
            error = f"{type(exc).__name__}: {exc}"[:200]
        rt.call(_record(rt, delivery, status, error))
        log.info("webhook attempt", delivery=delivery["id"], status=status, error=error)
    return len(due)


class WebhookSender(Periodic):
    """Drains the outbox from every worker process, twice a second."""

    name = "webhooks"

    def interval_s(self, rt: Runtime) -> float:
        return 0.5

    def tick(self, rt: Runtime) -> None:
        while deliver_due(rt):
            pass
