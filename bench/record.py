"""Writes one benchmark's figures into its own section of BENCHMARKS.md."""

from __future__ import annotations

import re
from pathlib import Path

FILE = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\n"
    "Figures written by the benchmarks under `bench/` (`--record`). Each section names its\n"
    "command, the machine and the date, with its baseline measured in the same run.\n"
)


def record(
    key: str,
    *,
    title: str,
    command: str,
    machine: str,
    day: str,
    settings: str,
    rows: list[tuple[str, str]],
) -> None:
    """Replace (or add) the section for `key`."""
    body = [
        f"<!-- bench:{key} -->",
        f"## {title}",
        "",
        f"- command: `{command}`",
        f"- machine: {machine}",
        f"- date: {day}",
        f"- settings: {settings}",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    body += [f"| {name} | {value} |" for name, value in rows]
    body += [f"<!-- /bench:{key} -->"]
    section = "\n".join(body)
    text = FILE.read_text() if FILE.exists() else HEADER
    pattern = re.compile(rf"<!-- bench:{key} -->.*?<!-- /bench:{key} -->", re.S)
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else (text.rstrip() + "\n\n" + section + "\n")
    )
    FILE.write_text(text)
