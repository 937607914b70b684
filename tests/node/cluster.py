"""Real node processes for fault tests: `taskapi requestor serve`, `taskapi provider join`, and their logs.

Every process starts in its own session (process group), so `kill9` takes a node down with the app
servers it started, as a crashed machine would, and teardown ends exactly the groups it started.
The store is read through a separate read-only SQLite connection, as an operator would inspect it.
Waits poll for a state under a generous hang guard: they never assert how long anything took.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apps.sdk.process import free_port
from apps.tutorialapp import pow
from environments.registry import environment_ids
from protos import node_pb2 as npb

from .wire import Control, Loop, RawProvider

# The environments providers can compute tutorialapp in, where installed.
ENVS = [env for env in ("local", "wasm") if env in environment_ids()]

TASKAPI = str(Path(sys.executable).with_name("taskapi"))
HOST = "127.0.0.1"
CHEATING_PROVIDER = Path(__file__).with_name("cheating_provider.py")

# Hang guards, never timing assertions: the states waited for normally arrive in a few seconds.
WAIT_GUARD_S = 90.0
EXIT_GUARD_S = 60.0
POLL_S = 0.02


def wait_until(condition: Callable[[], bool], what: str, guard_s: float = WAIT_GUARD_S) -> None:
    """Poll `condition` until it holds; fail naming `what` if it never does within the hang guard."""
    give_up = time.monotonic() + guard_s
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"hang: {what} did not happen within {guard_s:.0f} s")
        time.sleep(POLL_S)


@functools.cache
def smallest_nonce(text: str, difficulty: int) -> int:
    """The undisturbed answer of a tutorialapp task, computed here with the app's own kernel."""
    nonce = pow.search(text, difficulty, 0, 2 ** (difficulty + 4))
    assert nonce is not None
    return nonce


def expected_result(text: str, difficulty: int) -> dict[str, Any]:
    nonce = smallest_nonce(text, difficulty)
    return {"nonce": nonce, "hash": pow.digest(text, nonce).hex()}


@dataclass(frozen=True)
class SubtaskView:
    subtask_id: str
    state: str
    provider_id: str
    reason: str
    params: dict[str, Any]


class StoreView:
    """Read-only view of a requestor's SQLite store (WAL: readers never block the node)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    def subtasks(self, task_id: str) -> list[SubtaskView]:
        if not self.path.exists():
            return []
        with self._connect() as db:
            rows = db.execute(
                "SELECT subtask_id, state, provider_id, reason, params_json FROM subtasks"
                " WHERE task_id = ? ORDER BY rowid",
                (task_id,),
            ).fetchall()
        return [SubtaskView(row[0], row[1], row[2], row[3], json.loads(row[4] or "{}")) for row in rows]

    def states(self, task_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for subtask in self.subtasks(task_id):
            counts[subtask.state] = counts.get(subtask.state, 0) + 1
        return counts

    def task_state(self, task_id: str) -> str | None:
        if not self.path.exists():
            return None
        with self._connect() as db:
            row = db.execute("SELECT state FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        return None if row is None else str(row[0])

    def providers(self) -> list[str]:
        return list(self.offers())

    def offers(self) -> dict[str, dict[str, Any]]:
        """Each joined provider's offer, as the requestor stored it."""
        if not self.path.exists():
            return {}
        with self._connect() as db:
            rows = db.execute("SELECT provider_id, offer_json FROM providers").fetchall()
        return {str(row[0]): json.loads(row[1]) for row in rows}


class NodeProcess:
    """One started process, its log file, and the means to stop or kill it."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.name = name
        self.args = args
        self.log = log
        with open(log, "ab") as handle:
            self.process = subprocess.Popen(
                args, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_log(self, needle: str, what: str | None = None) -> None:
        """Wait until the log holds `needle` (a regular expression if it starts with `re:`)."""

        def found() -> bool:
            text = self.log_text()
            if needle.startswith("re:"):
                return re.search(needle[3:], text) is not None
            return needle in text

        def logged() -> bool:
            if found():
                return True
            if not self.running:
                raise AssertionError(f"{self.name} exited ({self.process.returncode}):\n{self.log_text()}")
            return False

        wait_until(logged, what or f"{self.name} logging {needle!r}")

    def kill9(self) -> None:
        """SIGKILL the process and every process of its group (the app servers it started)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(EXIT_GUARD_S)

    def stop(self) -> int:
        """SIGTERM, as an operator's Ctrl-C; SIGKILL after the guard. Then clear the group. Exit code."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(EXIT_GUARD_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(EXIT_GUARD_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.returncode

    def wait_exit(self) -> int:
        return self.process.wait(EXIT_GUARD_S)


class Requestor(NodeProcess):
    """`taskapi requestor serve` on a fixed port and data dir, so it can be killed and restarted."""

    def __init__(
        self,
        cluster: Cluster,
        data_dir: Path,
        port: int,
        token: str,
        lease_ms: int,
        incarnation: int = 1,
        options: tuple[str, ...] = (),
    ) -> None:
        self.cluster = cluster
        self.options = options
        self.incarnation = incarnation
        self.data_dir = data_dir
        self.port = port
        self.token = token
        self.lease_ms = lease_ms
        args = [
            TASKAPI,
            "requestor",
            "serve",
            "--listen",
            f"{HOST}:{port}",
            "--data-dir",
            str(data_dir),
            "--token",
            token,
            "--lease-ms",
            str(lease_ms),
            *options,
        ]
        name = f"requestor-{incarnation}"
        super().__init__(name, args, cluster.root / f"{name}.log", cluster.env)
        self.wait_for_log(f"requestor listening on {HOST}:{port}")
        self.store = StoreView(data_dir / "requestor.sqlite")

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def control_token(self) -> str:
        return (self.data_dir / "control-token").read_text().strip()

    def restart(self) -> Requestor:
        """A new requestor process on the same data dir and port."""
        return Requestor(
            self.cluster,
            self.data_dir,
            self.port,
            self.token,
            self.lease_ms,
            self.incarnation + 1,
            self.options,
        )

    def cli(self, *args: str) -> str:
        """Run `taskapi task ...` against this requestor; its stdout."""
        return self.cluster.cli(*args, "--requestor", self.address, "--data-dir", str(self.data_dir))

    def submit(self, app: str, env: str, params: dict[str, Any]) -> str:
        """The task's id, submitted over the control API that `taskapi task submit` calls: the CLI's own
        start (seconds on a loaded machine) would let a fault test's quick ranges end before it looks
        (tests/security/test_inputs.py submits through the CLI)."""
        control = self.control()
        try:
            return control.submit(app, env, params).value().task_id
        finally:
            control.close()

    def status(self, task_id: str) -> dict[str, Any]:
        """`taskapi task status --json`."""
        summary: dict[str, Any] = json.loads(self.cli("task", "status", task_id, "--json"))
        return summary

    def control(self) -> Control:
        return Control(self.cluster.loop, HOST, self.port, self.control_token)

    def raw_provider(self, name: str, token: str | None = None, claims: str | None = None) -> RawProvider:
        """A hand-driven provider with the key of `name` (wire.py), naming `claims` as its id if given."""
        return RawProvider(self.cluster.loop, HOST, self.port, token or self.token, name, claims=claims)

    def wait_for_task(self, task_id: str) -> npb.TaskStatus:
        """The task's final status once it left `active` (control API, polled)."""
        control = self.control()
        try:
            wait_until(lambda: self.store.task_state(task_id) != "active", f"task {task_id} ending")
            return control.status(task_id).value()
        finally:
            control.close()

    def result(self, task_id: str) -> dict[str, Any]:
        """The tutorialapp answer collected into the task's output dir."""
        result: dict[str, Any] = json.loads((self.data_dir / "outputs" / task_id / "result.json").read_text())
        return result


class Provider(NodeProcess):
    """`taskapi provider join` (or the cheating provider script), identified by its stable id."""

    def __init__(self, cluster: Cluster, name: str, args: list[str], data_dir: Path) -> None:
        super().__init__(name, args, cluster.root / f"{name}.log", cluster.env)
        id_file = data_dir / "provider-id"
        wait_until(id_file.is_file, f"{name} writing its provider id")
        self.provider_id = id_file.read_text().strip()


class Cluster:
    """The processes of one test under `root`; `close` stops them all and keeps their logs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "TASKAPI_DATA_DIR": str(root / "taskapi-home"),
            "PYTHONUNBUFFERED": "1",
        }
        self.loop = Loop()
        self.processes: list[NodeProcess] = []

    def requestor(
        self, lease_ms: int = 30_000, token: str = "provider-secret", options: tuple[str, ...] = ()
    ) -> Requestor:
        """`taskapi requestor serve`, with `options` added to its command line."""
        port = free_port(HOST)
        requestor = Requestor(self, self.root / "requestor", port, token, lease_ms, options=options)
        self.processes.append(requestor)
        return requestor

    def restart(self, requestor: Requestor) -> Requestor:
        restarted = requestor.restart()
        self.processes.append(restarted)
        return restarted

    def provider(
        self,
        name: str,
        requestor: Requestor,
        *,
        capacity: int = 1,
        env: str = "local",
        token: str | None = None,
        options: tuple[str, ...] = (),
    ) -> Provider:
        """`taskapi provider join`, with `options` added to its command line."""
        data_dir = self.root / name
        args = [
            TASKAPI,
            "provider",
            "join",
            requestor.address,
            "--token",
            token or requestor.token,
            "--env",
            env,
            "--capacity",
            str(capacity),
            "--data-dir",
            str(data_dir),
            *options,
        ]
        provider = Provider(self, name, args, data_dir / "provider")
        self.processes.append(provider)
        return provider

    def cheating_provider(
        self, name: str, requestor: Requestor, mode: str, *, env: str = "local", times: int = 0
    ) -> Provider:
        """tests/node/cheating_provider.py: a real ProviderNode whose runner lies (`wrong`) or raises."""
        data_dir = self.root / name
        args = [
            sys.executable,
            str(CHEATING_PROVIDER),
            requestor.address,
            "--token",
            requestor.token,
            "--env",
            env,
            "--mode",
            mode,
            "--times",
            str(times),
            "--data-dir",
            str(data_dir),
        ]
        provider = Provider(self, name, args, data_dir)
        self.processes.append(provider)
        return provider

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [TASKAPI, *args], capture_output=True, text=True, env=self.env, timeout=WAIT_GUARD_S
        )
        assert done.returncode == 0, f"taskapi {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def logs(self) -> str:
        return "\n".join(f"===== {p.name} ({p.log})\n{p.log_text()[-6000:]}" for p in self.processes)

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.loop.close()
