"""Reading a Prometheus `/metrics` endpoint of a server or worker the tests started."""

from __future__ import annotations

import asyncio
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

#: Sample values by metric name and label set.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def fetch_metrics(port: int) -> str:
    """The text of `http://127.0.0.1:{port}/metrics` (OSError while nothing answers)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


async def scrape(port: int) -> Samples:
    """Every sample of a `/metrics` endpoint, by name and labels."""
    text = await asyncio.to_thread(fetch_metrics, port)
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)
