"""Everything as separate processes, as an operator runs it: `taskapi requestor serve --blacklist-forgers`,
an honest `taskapi provider join`, a forging provider; `taskapi task status` shows bills and trust, and
`taskapi replay` shows the forgery."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from apps.sdk.process import free_port
from runtime.node.identity import ProviderKey

from .harness import HOST, TESTS_DIR

TASKAPI = str(Path(sys.executable).with_name("taskapi"))
GUARD_S = 120.0
TILES = ["--set", "width=48", "--set", "height=60", "--set", "parts=60", "--set", "max_iter=64"]


@contextmanager
def started(args: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A process for the block; SIGTERM (then SIGKILL) afterwards."""
    with open(log, "ab") as handle:
        process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(20)


def wait_for_port(port: int) -> None:
    give_up = time.monotonic() + GUARD_S
    while True:
        with socket.socket() as probe:
            if probe.connect_ex((HOST, port)) == 0:
                return
        assert time.monotonic() < give_up, f"hang: nothing listens on {port}"
        time.sleep(0.05)


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([TASKAPI, *args], capture_output=True, text=True, env=env, timeout=GUARD_S)
    assert not check or result.returncode == 0, result.stdout + result.stderr
    return result


def test_status_shows_bills_and_trust_and_replay_shows_the_forgery(tmp_path: Path) -> None:
    port, token, data = free_port(HOST), "provider-secret", tmp_path / "requestor"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])),
    }
    address = f"{HOST}:{port}"
    serve = [TASKAPI, "requestor", "serve", "--listen", address, "--data-dir", str(data), "--token", token]
    honest = [TASKAPI, "provider", "join", address, "--token", token, "--data-dir", str(tmp_path / "honest")]
    forger = [
        sys.executable,
        "-m",
        "verification.forger",
        address,
        "--token",
        token,
        "--strategy",
        "fuel_low",
    ]
    forger += ["--benchmark-score", "1000", "--data-dir", str(tmp_path / "forger")]
    forger_id = ProviderKey.load_or_create(tmp_path / "forger").provider_id  # the key it will sign with
    with started([*serve, "--blacklist-forgers"], tmp_path / "requestor.log", env):
        wait_for_port(port)
        with started(forger, tmp_path / "forger.log", env), started(honest, tmp_path / "honest.log", env):
            submitted = cli(
                env,
                "task",
                "submit",
                "mandelbrot",
                *TILES,
                "--wait",
                "--requestor",
                address,
                "--data-dir",
                str(data),
            )
            task_id = submitted.stdout.splitlines()[0].strip()
            status: dict[str, Any] = json.loads(
                cli(
                    env, "task", "status", task_id, "--json", "--requestor", address, "--data-dir", str(data)
                ).stdout
            )
    assert status["state"] == "finished", status
    trust = {entry["provider"]: entry for entry in status["trust"]}
    bills = {bill["provider"]: bill for bill in status["bills"]}
    forged = (tmp_path / "forger" / "forged.txt").read_text().split()
    assert forged and trust[forger_id]["forged"] >= 1, (trust, forged)
    assert trust[forger_id]["dropped"] and trust[forger_id]["blacklisted"] and trust[forger_id]["trust"] < 1
    honest_id = next(provider for provider in trust if provider != forger_id)
    assert (
        trust[honest_id]["rejected"] == trust[honest_id]["forged"] == 0 and trust[honest_id]["trust"] == 1.0
    )
    assert bills[honest_id]["fuel"] > 0 and bills[honest_id]["cost"] > 0
    assert bills.get(forger_id, {"subtasks": 0})["subtasks"] == 0, "forged work was billed"

    replay = cli(env, "replay", forged[0], "--data-dir", str(data), check=False)
    assert replay.returncode == 1 and "fuel differs" in replay.stdout, replay.stdout + replay.stderr
