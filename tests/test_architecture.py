"""The house rules, checked on the source tree (no stack needed).

* Layers read one way: the library (`reelscribe/`) at the bottom, the server and
  the workers above it and apart, the CLI on top. The Python client stands on
  its own (it is shipped to users without the rest).
* SQL lives under `reelscribe/db/` only.
* A job's options are read through `JobOptions`, never by string key.
* No module is longer than about 400 lines without saying why at its top.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Generated code: never hand-edited, so none of the rules apply.
GENERATED = ("reelscribe/v1/", "clients/python/src/reelscribe_client/_proto/")
#: Top-level packages and what each may import of the others.
MAY_IMPORT = {
    "reelscribe": set(),
    "server": {"reelscribe"},
    "workers": {"reelscribe"},
    "cli": {"reelscribe", "server", "workers", "reelscribe_client"},
    "reelscribe_client": set(),
}
PACKAGE_DIRS = {
    "reelscribe": ROOT / "reelscribe",
    "server": ROOT / "server",
    "workers": ROOT / "workers",
    "cli": ROOT / "cli",
    "reelscribe_client": ROOT / "clients/python/src/reelscribe_client",
}
#: Longest module (in lines) that needs no explanation.
MAX_LINES = 400
#: How a longer module explains itself: this phrase in its opening docstring.
LONG_MARKER = "Long on purpose:"


def _python_files(*dirs: Path) -> Iterator[Path]:
    for base in dirs:
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(GENERATED) and "/node_modules/" not in rel:
                yield path


def _imported_roots(path: Path) -> set[str]:
    """Top-level package names `path` imports (anywhere in the module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.partition(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_imports_never_run_up_the_layers(package: str) -> None:
    forbidden = set(MAY_IMPORT) - MAY_IMPORT[package] - {package}
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(_imported_roots(path) & forbidden)}"
        for path in _python_files(PACKAGE_DIRS[package])
        if _imported_roots(path) & forbidden
    ]
    assert not offenders, "\n".join(offenders)


_SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP)\s", re.MULTILINE)
_QUERY_METHODS = frozenset({"fetch", "fetchrow", "fetchval", "executemany"})


def _sql_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _SQL.search(node.value)
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} SQL text")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _QUERY_METHODS
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.func.attr}()")
    return found


def test_sql_lives_under_reelscribe_db() -> None:
    outside = [
        path
        for path in _python_files(
            PACKAGE_DIRS["reelscribe"],
            PACKAGE_DIRS["server"],
            PACKAGE_DIRS["workers"],
            PACKAGE_DIRS["cli"],
        )
        if "reelscribe/db/" not in path.relative_to(ROOT).as_posix()
    ]
    offenders = [use for path in outside for use in _sql_uses(path)]
    assert not offenders, "\n".join(offenders)


#: The job options' names (the fields of `reelscribe.v1.JobOptions`).
_OPTION_NAMES = (
    "language|model|disable_word_timestamps|skip_cache|extra_stages|callback_uri"
    "|highlight_count|translate_to|callback_stage_events|clip_burn_captions|clip_vertical"
)
#: A job row's options column, or one option looked up by its name as a string.
_OPTION_BY_KEY = re.compile(
    rf"""\[\s*["']options["']\s*\]|\b(options|opts)\s*(\.get\(|\[)\s*["']({_OPTION_NAMES})["']"""
)


def test_job_options_are_never_read_by_string_key() -> None:
    offenders = []
    for path in _python_files(
        PACKAGE_DIRS["reelscribe"], PACKAGE_DIRS["server"], PACKAGE_DIRS["workers"]
    ):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("reelscribe/db/") or rel == "reelscribe/options.py":
            continue  # the column is read and written there, as JSON
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if _OPTION_BY_KEY.search(line) and "JobOptions.from_json" not in line:
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_long_modules_say_why() -> None:
    dirs = [*PACKAGE_DIRS.values(), ROOT / "tests", ROOT / "bench", ROOT / "scripts"]
    offenders = []
    for path in _python_files(*dirs):
        text = path.read_text()
        if text.count("\n") <= MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if LONG_MARKER not in docstring:
            offenders.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert not offenders, (
        f"modules above {MAX_LINES} lines must split or say `{LONG_MARKER} <reason>` "
        "in their docstring:\n" + "\n".join(offenders)
    )
