"""Prometheus metrics shared by the server and the workers."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

COST_USD = Counter(
    "reelscribe_cost_usd_total", "Estimated processing cost in US dollars.", ["stage"]
)
PROVIDER_TOKENS = Counter(
    "reelscribe_provider_tokens_total", "Tokens used at analysis providers.", ["provider"]
)
COST_ALERTS = Counter(
    "reelscribe_cost_alerts_total", "Days whose cost rose more than the alert threshold."
)
DAILY_COST_INCREASE = Gauge(
    "reelscribe_daily_cost_increase_percent",
    "Today's estimated cost over yesterday's, in percent (last check).",
)
