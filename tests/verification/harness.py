"""An in-process requestor on real gRPC with honest and forging providers, in-process or as real processes.

Waits are hang guards, never timing assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from environments.wasm.environment import WasmEnvironment
from protos import node_pb2 as npb
from runtime.appmanager import AppManager
from runtime.node.compute import ComputeRunner, WasmRunner
from runtime.node.identity import KEY_FILE, ProviderKey
from runtime.node.journal import Entry
from runtime.node.provider import ProviderConfig, ProviderNode
from runtime.node.requestor import RequestorConfig, RequestorNode
from runtime.node.requestor_service import serve_requestor
from runtime.node.runners import builtin_whitelist
from runtime.node.trust import TrustPolicy
from runtime.node.verification import VerificationConfig
from tests.verification.forger import ForgingRunner, forged_ids, write_benchmark

HOST = "127.0.0.1"
TESTS_DIR = Path(__file__).resolve().parents[1]
TASK_GUARD_S = 240.0
EXIT_GUARD_S = 20.0


async def measure_benchmark() -> float:
    """This machine's honest wasm benchmark score (Mfuel/s), as a provider would claim it."""
    environment = WasmEnvironment()
    await environment.prepare()
    try:
        return float((await environment.benchmark()).score)
    finally:
        await environment.clean_up()


def named_key(data_dir: Path, name: str) -> ProviderKey:
    """Provider `name`'s key in `data_dir`, made from its name when there is none yet.

    So a provider's id is the same in every run, and with it the requestor's seeded sampling stream for it
    (`VerificationConfig.seed` seeds one stream per provider id): a fresh random key would give every run
    other draws, and a test's outcome would depend on them.
    """
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        seed = hashlib.sha256(f"taskapi test provider {name}".encode()).digest()
        pem = Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            handle.write(pem)
    return ProviderKey.load_or_create(data_dir)


def config(policy: TrustPolicy | None = None, seed: int | None = None) -> RequestorConfig:
    """A requestor config with this trust policy (and a seeded sampler)."""
    return RequestorConfig(verification=VerificationConfig(policy=policy or TrustPolicy(), seed=seed))


@dataclass
class ProcessProvider:
    """A forger run as its own process (`python -m verification.forger`)."""

    name: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def forged(self) -> set[str]:
        return forged_ids(self.data_dir)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(EXIT_GUARD_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(EXIT_GUARD_S)


@dataclass
class Harness:
    """`async with Harness(root) as h:` a requestor serving; `h.provider(...)` adds providers.

    Providers are named by the tests; their ids are those of their keys (`id(name)`), made from their
    names in their data dirs (`named_key`), so a provider started again under the same name is the same
    provider, and has the same id in every run.
    """

    root: Path
    requestor_config: RequestorConfig = field(default_factory=RequestorConfig)
    benchmark_score: float = 0.0
    """Stored as every in-process provider's benchmark (0: providers measure it themselves)."""

    def __post_init__(self) -> None:
        self.token = secrets.token_hex(16)
        self.port = 0
        self._stop = asyncio.Event()
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._processes: list[ProcessProvider] = []
        self.runners: dict[str, ComputeRunner] = {}
        self._ids: dict[str, str] = {}

    def id(self, name: str) -> str:
        """The provider id of provider `name`: that of the key in its data dir (made there if none yet)."""
        if name not in self._ids:
            self._ids[name] = named_key(self.root / name, name).provider_id
        return self._ids[name]

    async def __aenter__(self) -> Harness:
        self.node = RequestorNode(self.root / "requestor", self.requestor_config, app_manager=AppManager())
        await self.node.start()
        self.server, self.port = await serve_requestor(
            self.node, HOST, 0, provider_token=self.token, control_token=self.token
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        for process in self._processes:
            await asyncio.to_thread(process.stop)
        await asyncio.gather(*self._runs.values(), return_exceptions=True)
        self.server.close()
        await self.server.wait_closed()
        await self.node.stop()

    def provider(self, name: str, runner: ComputeRunner | None = None, capacity: int = 1) -> ComputeRunner:
        """Start an in-process provider `name` (honest unless `runner` says otherwise); returns its runner."""
        runner = runner or WasmRunner()
        data_dir = self.root / name
        if self.benchmark_score and not (data_dir / "benchmarks.json").exists():
            write_benchmark(data_dir, self.benchmark_score)
        self.id(name)
        config = ProviderConfig(HOST, self.port, self.token, data_dir, capacity=capacity)
        node = ProviderNode(config, [runner], builtin_whitelist())
        self._runs[name] = asyncio.create_task(node.run(self._stop))
        self.runners[name] = runner
        return runner

    def forger(
        self,
        name: str,
        strategy: str,
        *,
        honest_first: int = 0,
        rate: float = 1.0,
        seed: int = 0,
        capacity: int = 1,
    ) -> ForgingRunner:
        """Start an in-process forging provider; its runner knows what it forged."""
        runner = ForgingRunner(
            WasmRunner(),
            strategy,
            honest_first=honest_first,
            rate=rate,
            seed=seed,
            record=self.root / name / "forged.txt",
        )
        self.provider(name, runner, capacity)
        return runner

    async def stop_provider(self, name: str) -> None:
        """Stop one in-process provider (it leaves the requestor)."""
        run = self._runs.pop(name)
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run

    def process_forger(
        self, name: str, strategy: str, *args: str, score: float | None = None
    ) -> ProcessProvider:
        """Start a forging provider as a real process."""
        data_dir = self.root / name
        self.id(name)
        claimed = score if score is not None else self.benchmark_score
        log = self.root / f"{name}.log"
        command = [
            sys.executable,
            "-m",
            "verification.forger",
            f"{HOST}:{self.port}",
            "--token",
            self.token,
            "--strategy",
            strategy,
            "--data-dir",
            str(data_dir),
            *(["--benchmark-score", str(claimed)] if claimed else []),
            *args,
        ]
        path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]))
        with open(log, "ab") as handle:
            process = subprocess.Popen(
                command, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": path}
            )
        provider = ProcessProvider(name, data_dir, process, log)
        self._processes.append(provider)
        return provider

    async def joined(self, *names: str) -> None:
        """Wait until these providers joined (a process takes a moment to start)."""

        async def poll() -> None:
            while any(self.node.store.provider_offer(self.id(name)) is None for name in names):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(poll(), TASK_GUARD_S)

    async def run_task(
        self, app: str, params: Mapping[str, object], max_subtasks: int = 10_000
    ) -> npb.TaskStatus:
        """Submit a task and wait for its end (under a hang guard)."""
        task_id = await self.node.submit_task(app, "wasm", dict(params), max_subtasks)
        return await asyncio.wait_for(self.node.wait_for_task(task_id), TASK_GUARD_S)

    def journal(self, task_id: str | None = None) -> list[Entry]:
        """The journal's entries, each naming its provider by the name it was started as."""
        names = {provider_id: name for name, provider_id in self._ids.items()}
        entries = self.node.verification.journal.entries(task_id)
        return [
            replace(entry, provider_id=names.get(entry.provider_id, entry.provider_id)) for entry in entries
        ]

    def states(self, task_id: str) -> dict[str, str]:
        """Subtask id -> the store's state, for one task."""
        return {s.subtask_id: s.state for s in self.node.store.subtasks(task_id=task_id)}
