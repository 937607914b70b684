"""`--dashboard` on the command line: `taskapi run` serves one while its task runs; bad addresses refused."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.node.cluster import TASKAPI


def test_run_serves_a_dashboard_while_its_task_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            TASKAPI,
            "run",
            "mandelbrot",
            "--set",
            "width=16",
            "--set",
            "height=8",
            "--set",
            "parts=2",
            "--output",
            str(tmp_path / "out"),
            "--data-dir",
            str(tmp_path / "run"),
            "--dashboard",
            ":0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    token_file = tmp_path / "run" / "control-token"
    assert re.search(
        rf"dashboard at http://127\.0\.0\.1:\d+/ \(log in with the token in {token_file}\)", done.stderr
    )
    assert token_file.stat().st_mode & 0o077 == 0
    assert (tmp_path / "out" / "image.png").is_file()


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:port", "127.0.0.1:70000"])
def test_a_malformed_dashboard_address_is_refused(tmp_path: Path, address: str) -> None:
    done = subprocess.run(
        [TASKAPI, "run", "mandelbrot", "--set", "width=16", "--set", "height=8", "--dashboard", address],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert f"expected HOST:PORT, got {address!r}" in done.stderr
