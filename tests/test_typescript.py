"""The TypeScript client's example, run with Node against the real server."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from server.app import ServerApp
from tests.support.media import MEDIA_DIR
from tests.support.processes import client_env
from tests.support.tokens import token_for

CLIENT = Path(__file__).resolve().parent.parent / "clients" / "typescript"


async def test_node_example_uploads_creates_and_streams(server: ServerApp) -> None:
    tsx = CLIENT / "node_modules" / ".bin" / "tsx"
    if not tsx.exists():
        pytest.skip("the TypeScript client's packages are installed by `make setup`")
    env = client_env(server.port, token_for("ts-user"))
    proc = await asyncio.create_subprocess_exec(
        str(tsx),
        "src/example.ts",
        str(MEDIA_DIR / "ocean.ogg"),
        cwd=CLIENT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0].startswith("jobs/")
    assert any("succeeded" in line and "100.0%" in line for line in lines), lines
    seqs = [int(line.split()[0]) for line in lines[1:] if line.split()[0].isdigit()]
    logged = [s for s in seqs if s]
    assert logged == list(range(1, len(logged) + 1))


async def test_node_example_fails_with_one_line_and_no_stack_trace(server: ServerApp) -> None:
    tsx = CLIENT / "node_modules" / ".bin" / "tsx"
    if not tsx.exists():
        pytest.skip("the TypeScript client's packages are installed by `make setup`")
    cases = [
        ("no-such-file.mp4", "any", "no such file: no-such-file.mp4"),
        (str(MEDIA_DIR / "ocean.ogg"), "not-a-jwt", "Unauthenticated"),
    ]
    for path, token, expected in cases:
        proc = await asyncio.create_subprocess_exec(
            str(tsx),
            "src/example.ts",
            path,
            cwd=CLIENT,
            env=client_env(server.port, token),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode != 0, path
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], lines
        assert not out.strip()
