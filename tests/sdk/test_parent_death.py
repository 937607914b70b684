"""App servers die with the node that started them, even a node killed with SIGKILL (Linux).

A real parent process starts a real app server through `AppProcess` and prints its pid; the test kills the
parent with SIGKILL and waits for the server to be gone. Waits are hang guards, not timing assertions.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from apps.sdk.parent import PARENT_PID_ENV
from apps.sdk.process import free_port, python_app_command

from ..processes import children, gone

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")

ROOT = Path(__file__).resolve().parents[2]
WASM_TUTORIALAPP = ROOT / "wasm_apps" / "tutorialapp" / "tutorialapp.wasm"
GONE_GUARD_S = 30.0

PARENT = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from apps.sdk.process import AppProcess

    async def main() -> None:
        process = AppProcess(json.loads(sys.argv[1]), "requestor", Path(sys.argv[2]))
        await process.start(timeout=60)
        print(process.pid, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def wait_gone(pid: int, guard_s: float = GONE_GUARD_S) -> bool:
    give_up = time.monotonic() + guard_s
    while not gone(pid):
        if time.monotonic() > give_up:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(python_app_command("apps.tutorialapp"), id="python-app"),
        pytest.param([sys.executable, "-m", "environments.wasm", str(WASM_TUTORIALAPP)], id="wasm-app"),
    ],
)
def test_app_server_dies_when_its_node_is_killed(tmp_path: Path, command: list[str]) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, json.dumps(command), str(tmp_path / "work")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    child = 0
    workers: list[int] = []
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline().strip()
        assert line.isdigit(), f"the parent did not start the app server: {line!r}"
        child = int(line)
        assert not gone(child)
        workers = children(child)  # the wasm app's warmed-up worker; none for a Python app
        parent.kill()
        parent.wait()
        assert wait_gone(child), f"app server {child} outlived its killed node by {GONE_GUARD_S:.0f} s"
        # An idle worker ends on the EOF of its socket to the server.
        assert all(wait_gone(worker) for worker in workers), f"workers {workers} outlived their app server"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
        for pid in [child, *workers] if child else []:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_app_server_refuses_to_start_for_a_parent_that_is_gone(tmp_path: Path) -> None:
    # Its parent is this test, not the process named: as if the node died before the server tied itself to it.
    not_the_parent = os.getppid()
    result = subprocess.run(
        [*python_app_command("apps.tutorialapp"), "requestor", str(free_port())],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), PARENT_PID_ENV: str(not_the_parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"the node (pid {not_the_parent}) that started it has exited" in result.stderr
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stdout


def test_app_server_started_by_hand_is_not_tied(tmp_path: Path) -> None:
    """Without the variable (a server started from a shell) nothing changes: it serves until stopped."""
    env = {key: value for key, value in os.environ.items() if key != PARENT_PID_ENV}
    server = subprocess.Popen(
        [*python_app_command("apps.tutorialapp"), "requestor", str(free_port())],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert "listening" in server.stdout.readline()
        assert server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=60)
