"""The first SIGINT (Ctrl-C) or SIGTERM ends `taskapi run`, `provider join` and `requestor serve` within 2 s.

Real commands in their own process group, real signals, a long proof of work (wasm) mid-computation. After
the signal the command must be gone, with every process of its group (app servers, wasm workers), within
2 s; its temporary dirs removed; one line said, no traceback; and a run with `--data-dir` resumes its task.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from apps.tutorialapp import pow
from environments.docker.engine import engine_support
from environments.docker.owner import OWNER_LABEL, owner_of

TASKAPI = [str(Path(sys.executable).with_name("taskapi"))]
LONG_POW = ["--set", "input=hello", "--set", "difficulty=30", "--set", "subtasks=4"]
"""Four nonce ranges of 2^28 hashes each: minutes of wasm per subtask."""
STOP_WITHIN_S = 2.0
START_TIMEOUT_S = 60.0


def group_members(pgid: int) -> list[str]:
    """`pid command` of every live (not zombie) process of process group `pgid`, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, _ppid, group = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(group) == pgid and state != "Z":
            members.append(f"{entry.name} {command.strip()}")
    return members


def wait_until(condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def subtasks_in(database: Path, state: str) -> int:
    """Subtasks in `state` in a requestor's store (0 while it does not exist yet)."""
    if not database.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM subtasks WHERE state = ?", (state,)).fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


class Command:
    """A `taskapi` command in its own process group, with its own TMPDIR and data dir; `args` of one
    item is a shell command line (`taskapi` on its PATH), run with `exec` so it keeps the shell's pid."""

    def __init__(self, args: list[str], home: Path, name: str) -> None:
        self.tmp = home / f"{name}-tmp"
        self.tmp.mkdir()
        self.stderr_path = home / f"{name}.stderr"
        self.stdout_path = home / f"{name}.stdout"
        env = {**os.environ, "TMPDIR": str(self.tmp), "TASKAPI_DATA_DIR": str(home / "data")}
        env["PATH"] = f"{Path(TASKAPI[0]).parent}:{env.get('PATH', '')}"
        argv = ["bash", "-c", f"exec {args[0]}"] if len(args) == 1 else [*TASKAPI, *args]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=err, env=env, cwd=home, start_new_session=True
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"exited early ({self.process.returncode}):\n{self.stderr}")
        return True

    def interrupt(self, signum: int) -> float:
        """Send `signum`; wait until the command and its whole group are gone. Seconds it took."""
        began = time.monotonic()
        self.process.send_signal(signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_WITHIN_S)
        while group_members(self.process.pid) and time.monotonic() - began < STOP_WITHIN_S:
            time.sleep(0.02)
        return time.monotonic() - began

    def kill_group(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.process.wait(5)


@pytest.fixture
def commands(tmp_path: Path) -> Iterator[Callable[[list[str], str], Command]]:
    started: list[Command] = []

    def start(args: list[str], name: str) -> Command:
        command = Command(args, tmp_path, name)
        started.append(command)
        return command

    yield start
    for command in started:
        command.kill_group()


def assert_stopped_cleanly(command: Command, signum: int, took: float) -> None:
    left = group_members(command.process.pid)
    assert command.process.poll() is not None and not left, (
        f"still running {took:.1f} s after {signal.Signals(signum).name}: {left}\n{command.stderr}"
    )
    assert took < STOP_WITHIN_S
    assert command.process.returncode == 128 + signum, command.stderr
    assert "Traceback" not in command.stderr and "panicked" not in command.stderr, command.stderr
    assert list(command.tmp.iterdir()) == [], "temporary files left behind"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_stops_its_running_wasm_subtasks_at_once(
    commands: Callable[[list[str], str], Command], signum: int
) -> None:
    run = commands(["run", "tutorialapp", *LONG_POW, "--output", "out"], "run")
    wait_until(
        lambda: (
            run.alive()
            and any(subtasks_in(db, "assigned") for db in run.tmp.glob("taskapi-run-*/requestor/*.sqlite"))
        ),
        "subtasks handed to the providers",
    )
    time.sleep(1.0)  # the providers' wasm workers are computing now
    took = run.interrupt(signum)
    assert_stopped_cleanly(run, signum, took)
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(f"interrupted ({signal.Signals(signum).name}): task tutorialapp-"), run.stderr
    assert "give --data-dir" in last


def test_run_on_docker_stops_its_containers_at_once(commands: Callable[[list[str], str], Command]) -> None:
    if not engine_support().supported:
        pytest.skip("no Docker engine answers (scripts/setup_docker starts one)")
    run = commands(["run", "tutorialapp", "--env", "docker_cpu", *LONG_POW, "--output", "out"], "run")
    owner = owner_of(run.process.pid)
    client = docker.from_env()

    def containers() -> list[str]:
        found = client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={owner}"})
        return [f"{container.name} ({container.status})" for container in found]

    try:
        wait_until(
            lambda: run.alive() and len(containers()) >= 3, "the app server and two providers' containers"
        )
        time.sleep(1.0)
        took = run.interrupt(signal.SIGINT)
        assert_stopped_cleanly(run, signal.SIGINT, took)
        assert containers() == []
    finally:
        client.close()


def test_run_with_a_data_dir_resumes_its_task(
    commands: Callable[[list[str], str], Command], tmp_path: Path
) -> None:
    # 32 ranges of 2^15 nonces on one provider; this input's first valid nonce (1076813) lies in the last,
    # open-ended range, so all 32 are needed: the first ones are accepted long before the end.
    args = ["run", "tutorialapp", "--set", "input=resume-2", "--set", "difficulty=20", "--set", "subtasks=32"]
    args += ["--providers", "1", "--data-dir", "state", "--output", "out", "--json"]
    database = tmp_path / "state" / "requestor" / "requestor.sqlite"
    first = commands(args, "first")
    wait_until(lambda: first.alive() and subtasks_in(database, "accepted") >= 2, "accepted subtasks")
    took = first.interrupt(signal.SIGINT)
    assert first.process.returncode == 130 and took < STOP_WITHIN_S, first.stderr
    accepted_before = subtasks_in(database, "accepted")
    assert accepted_before < 32, "every range was accepted before the interrupt: nothing left to resume"
    last = first.stderr.strip().splitlines()[-1]
    task_id = last.split("task ", 1)[1].split(":", 1)[0]
    assert "resume with the same command" in last

    second = commands(args, "second")
    assert second.process.wait(120) == 0, second.stderr
    summary = json.loads(second.stdout_path.read_text().strip().splitlines()[-1])
    assert summary["task_id"] == task_id
    assert subtasks_in(database, "accepted") >= accepted_before
    nonce = pow.search("resume-2", 20, 0, 2**21)
    assert nonce is not None
    written = json.loads((tmp_path / "out" / "result.json").read_text())
    assert written == {"nonce": nonce, "hash": pow.digest("resume-2", nonce).hex()}


def _serve(commands: Callable[[list[str], str], Command], home: Path) -> tuple[Command, str]:
    requestor = commands(["requestor", "serve", "--listen", "127.0.0.1:0", "--data-dir", "node"], "requestor")
    wait_until(lambda: requestor.alive() and "listening on" in requestor.stderr, "the requestor listening")
    address = requestor.stderr.split("listening on ", 1)[1].split()[0]
    submit = subprocess.run(
        [*TASKAPI, "task", "submit", "tutorialapp", *LONG_POW, "--requestor", address, "--data-dir", "node"],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert submit.returncode == 0, submit.stderr
    return requestor, address


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_provider_join_and_requestor_serve_stop_at_once(
    commands: Callable[[list[str], str], Command], tmp_path: Path, signum: int
) -> None:
    requestor, _ = _serve(commands, tmp_path)
    said = requestor.stderr.splitlines()
    join = said[said.index("providers join with (the token is in node/provider-token):") + 1].strip()
    assert join.startswith("taskapi provider join 127.0.0.1:")
    provider = commands([f"{join} --capacity 2 --data-dir prov"], "provider")  # the line, as printed
    database = tmp_path / "node" / "requestor.sqlite"
    wait_until(lambda: provider.alive() and subtasks_in(database, "assigned") >= 2, "two subtasks assigned")
    time.sleep(1.0)
    took = provider.interrupt(signum)
    assert_stopped_cleanly(provider, signum, took)
    assert "interrupted" in provider.stderr.strip().splitlines()[-1]

    took = requestor.interrupt(signum)
    assert_stopped_cleanly(requestor, signum, took)
    assert "interrupted" in requestor.stderr.strip().splitlines()[-1]
