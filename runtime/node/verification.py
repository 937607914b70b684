"""The requestor's verification ladder: the app's Verify, then deterministic re-execution of a sample.

For every delivered result:

1. the app's Verify (cheap spot checks; its FAILURE rejects the result as before);
2. for a wasm subtask the app accepted, a re-execution with probability `sample_rate(trust)`: the
   requestor runs the subtask itself (`reexecute.py`) and accepts only when its output bytes equal those
   of the delivered file as it lies on disk (hashed again here) AND its fuel equals the claim. A
   difference is a forgery: the app discards the result (DiscardSubtasks returns its work to pending),
   the provider's trust drops to nothing, it is dropped from the task, and an audit re-executes every
   result of that provider accepted unchecked so far (discarding the forged ones).

Trust (`trust.py`) and the journal (`journal.py`) live in `<data>/verification.sqlite`. Non-wasm results
get the app's Verify, after a quorum of providers agreed on them where the app asks for redundancy
(`quorum.py`; the requestor reports each copy's verdict through `quorum_verdict`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from grpclib.exceptions import GRPCError

from apps.sdk.client import RequestorAppClient
from apps.sdk.handlers import VerifyResult
from apps.sdk.sandboxed_files import UnsafePath, file_digest
from apps.sdk.workdir import RequestorTaskDir
from environments.registry import capabilities
from protos import node_pb2 as npb
from runtime.node.app_servers import ResolvedApp
from runtime.node.journal import DB_NAME, Entry, Input, Journal, connect
from runtime.node.market import ProviderOffer
from runtime.node.reexecute import Reexecutor, Unverifiable, first_difference
from runtime.node.resources import hash_off_loop_if_big, sha256_file
from runtime.node.states import SubtaskState
from runtime.node.store import Store, SubtaskRow, TaskRow, now_ms
from runtime.node.trust import TrustPolicy, TrustStore, sample_rate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerificationConfig:
    """Node options of the ladder."""

    policy: TrustPolicy = field(default_factory=TrustPolicy)
    reexecute: bool = True
    """Re-execute sampled wasm results (off: the app's Verify alone decides)."""
    seed: int | None = None
    """Seed of the sampler (one stream per provider), for reproducible tests and benchmarks (None: the
    OS's randomness, which providers cannot predict)."""


class VerifiedTask(Protocol):
    """What the ladder needs of an active task (the requestor's ActiveTask)."""

    row: TaskRow
    app: ResolvedApp
    client: RequestorAppClient
    task_dir: RequestorTaskDir

    @property
    def refused_by(self) -> set[str]:
        """Providers that get no more of the task's subtasks (a forger is added)."""


TaskLookup = Callable[[str], VerifiedTask | None]
FailTask = Callable[[str, str], Awaitable[None]]


class Verification:
    """Runs the ladder, keeps trust and the journal, audits providers caught forging."""

    def __init__(
        self,
        data_dir: Path,
        store: Store,
        tasks: TaskLookup,
        fail_task: FailTask,
        config: VerificationConfig | None = None,
    ) -> None:
        self.config = config or VerificationConfig()
        self.store = store
        self._tasks = tasks
        self._fail_task = fail_task
        self._db = connect(data_dir / DB_NAME)
        self.journal = Journal(self._db)
        self.trust = TrustStore(self._db, self.config.policy)
        self.reexecutor = Reexecutor(data_dir / "reexec")
        self._rngs: dict[str, random.Random] = {}
        self._module_digests: dict[Path, str] = {}
        self._audit_lock = asyncio.Lock()

    async def close(self) -> None:
        await self.reexecutor.close()
        self._db.close()

    # hooks called by the requestor

    def assigned(
        self,
        task: VerifiedTask,
        subtask_id: str,
        provider_id: str,
        params_json: str,
        resources: list[dict[str, Any]],
    ) -> None:
        """Journal what a re-run of this subtask needs, as it is handed to `provider_id`."""
        module = task.app.module
        digest = ""
        if module is not None:
            if module not in self._module_digests:
                self._module_digests[module] = sha256_file(module)
            digest = self._module_digests[module]
        row = task.row
        self.journal.assigned(
            Entry(
                subtask_id=subtask_id,
                task_id=row.task_id,
                provider_id=provider_id,
                app_id=row.app_id,
                app_name=row.app,
                env_id=row.env_id,
                module_sha256=digest,
                module_path=str(module or ""),
                inputs=tuple(Input(r["name"], r["sha256"]) for r in resources),
                inputs_dir=str(task.task_dir.subtask_inputs),
                params_json=params_json,
                seed=f"{row.task_id}/{subtask_id}",
                assigned_ms=now_ms(),
            )
        )

    def excluded(self, provider_id: str, task_id: str) -> bool:
        """Whether the provider may not take this task's subtasks (caught forging; blacklisted)."""
        return self.trust.excluded(provider_id, task_id)

    async def ladder(
        self,
        task: VerifiedTask,
        subtask_id: str,
        verdict: VerifyResult,
        reason: str,
        offers: Mapping[str, ProviderOffer],
    ) -> tuple[VerifyResult, str]:
        """Take the app's verdict on a delivered result through the rest of the ladder; the final verdict.

        SUCCESS may turn into FAILURE (a forgery; already discarded on the app). Trust and journal follow.
        """
        subtask = self.store.subtask(subtask_id)
        entry = self.journal.get(subtask_id)
        if subtask is None or entry is None or subtask.result_name is None:
            return verdict, reason
        provider = subtask.provider_id
        output = task.task_dir.subtask_outputs(subtask_id) / subtask.result_name
        # What is judged is the file on disk (the one the app verified), not a claim about it.
        on_disk = await hash_off_loop_if_big(output, lambda: _digest_on_disk(output))
        self.journal.delivered(subtask_id, output, on_disk, subtask.fuel, subtask.wall_ms)
        entry = self.journal.get(subtask_id) or entry
        if verdict is VerifyResult.SUCCESS:
            checked = False
            if self._sampled(entry):
                problem = await self._reexecute(entry, "reexecuted")
                if problem is not None:
                    await self._forged(task, [entry], problem, was_accepted=False)
                    await self.audit(provider)
                    return VerifyResult.FAILURE, f"forged result: {problem}"
                checked = self._checked(subtask_id)
            self.trust.accepted(provider, reexecuted=checked)
            self.journal.judged(subtask_id, "accepted")
            self._observe_speed(entry, subtask.updated_ms, offers.get(provider))
        elif verdict is VerifyResult.FAILURE:
            self.trust.rejected(provider)
            self.trust.drop(provider, task.row.task_id, f"Verify failed: {reason}")
            self.journal.judged(subtask_id, "rejected", reason)
            if capabilities(entry.env_id).deterministic and self.config.reexecute:
                # A wrong result of a deterministic app is no accident: check the rest of its work.
                await self.audit(provider)
        else:
            self.journal.judged(subtask_id, "inconclusive", reason)
        return verdict, reason

    def quorum_verdict(
        self, task_id: str, subtask: SubtaskRow, output: Path, verdict: str, reason: str
    ) -> None:
        """Trust and journal for a copy judged through a quorum (`quorum.py`) rather than the ladder.

        `verdict`: accepted, rejected (the app failed the agreed result), forged (outvoted) or inconclusive.
        """
        provider = subtask.provider_id
        self.journal.delivered(
            subtask.subtask_id, output, subtask.result_sha256 or "", subtask.fuel, subtask.wall_ms
        )
        if verdict == "accepted":
            self.trust.accepted(provider, reexecuted=False)
        elif verdict == "rejected":
            self.trust.rejected(provider)
        elif verdict == "forged":
            self.trust.forged(provider, task_id, reason)
            log.warning("provider %s outvoted on subtask %s: %s", provider, subtask.subtask_id, reason)
        self.journal.judged(subtask.subtask_id, verdict, reason)

    def _checked(self, subtask_id: str) -> bool:
        entry = self.journal.get(subtask_id)
        return entry is not None and entry.checked == "reexecuted"

    def report(self, task_id: str) -> list[npb.ProviderTrust]:
        """Trust of every provider that delivered a result for the task."""
        dropped = self.trust.dropped_from(task_id)
        report = []
        for provider_id in self.journal.providers(task_id):
            record = self.trust.get(provider_id)
            report.append(
                npb.ProviderTrust(
                    provider_id=provider_id,
                    trust=record.score,
                    sample_rate=sample_rate(record, self.config.policy),
                    accepted=record.accepted,
                    reexecuted=record.reexecuted,
                    rejected=record.rejected,
                    forged=record.forged,
                    dropped=provider_id in dropped,
                    blacklisted=record.blacklisted,
                    benchmark_inflated=record.benchmark_inflated,
                )
            )
        return report

    # the ladder's steps

    def _sampled(self, entry: Entry) -> bool:
        if not capabilities(entry.env_id).deterministic or not self.config.reexecute:
            return False
        rate = sample_rate(self.trust.get(entry.provider_id), self.config.policy)
        return rate >= 1.0 or self._rng(entry.provider_id).random() < rate

    def _rng(self, provider_id: str) -> random.Random:
        """The provider's sampling stream: the OS's randomness, or a seeded stream per provider."""
        if provider_id not in self._rngs:
            seed = self.config.seed
            self._rngs[provider_id] = (
                random.SystemRandom() if seed is None else random.Random(f"{seed}/{provider_id}")
            )
        return self._rngs[provider_id]

    async def _reexecute(self, entry: Entry, checked: str) -> str | None:
        """Re-run the subtask; None when output bytes, output name and fuel all equal the claim, else why not.

        A re-execution that cannot run faithfully here (or fails itself) blames nobody: None, checked 'error'.
        """
        try:
            async with self.reexecutor.run(entry) as rerun:
                self.journal.reexecuted(entry.subtask_id, rerun.sha256, rerun.fuel, checked)
                return differences(entry, rerun.output, rerun.sha256, rerun.fuel)
        except Unverifiable as exc:
            log.warning("subtask %s cannot be re-executed: %s", entry.subtask_id, exc)
        except Exception as exc:
            log.error("re-execution of subtask %s failed: %s: %s", entry.subtask_id, type(exc).__name__, exc)
        self.journal.reexecuted(entry.subtask_id, None, None, "error")
        return None

    async def _forged(
        self, task: VerifiedTask, entries: list[Entry], problem: str, was_accepted: bool
    ) -> None:
        """Discard forged results of one task on its app; drop their provider from the task."""
        task_id = task.row.task_id
        ids = [entry.subtask_id for entry in entries]
        provider = entries[0].provider_id
        try:
            discarded = set(await task.client.discard_subtasks(task_id, ids))
        except GRPCError as exc:
            discarded, problem = set(), f"{problem} (DiscardSubtasks failed: {exc.message})"
        task.refused_by.add(provider)
        self.trust.forged(provider, task_id, problem, len(entries), len(entries) if was_accepted else 0)
        for entry in entries:
            log.warning("subtask %s of provider %s is forged: %s", entry.subtask_id, provider, problem)
            self.journal.judged(entry.subtask_id, "forged", problem)
            if was_accepted:
                self.store.set_subtask_state(
                    entry.subtask_id, SubtaskState.DISCARDED, f"forged (audit): {problem}"
                )
        kept = [subtask_id for subtask_id in ids if subtask_id not in discarded]
        if kept:
            # The app still counts forged work as done: its outputs cannot be trusted.
            await self._fail_task(task_id, f"the app kept forged results {kept}: {problem}")

    async def audit(self, provider_id: str) -> int:
        """Re-execute every result of the provider accepted unchecked; discard the forged. Returns how many.

        Results of tasks no longer active cannot be taken back from their apps: the forged ones are marked
        in the journal and the store (so they are not billed), and logged.
        """
        found = 0
        async with self._audit_lock:
            for entry in self.journal.unchecked_accepted(provider_id):
                problem = await self._reexecute(entry, "audit")
                if problem is None:
                    continue
                found += 1
                task = self._tasks(entry.task_id)
                if task is not None:
                    await self._forged(task, [entry], f"audit: {problem}", was_accepted=True)
                    continue
                log.error(
                    "subtask %s of finished task %s was forged: %s", entry.subtask_id, entry.task_id, problem
                )
                self.trust.forged(provider_id, entry.task_id, problem, 1, 1)
                self.journal.judged(entry.subtask_id, "forged", f"audit after the task ended: {problem}")
                self.store.set_subtask_state(
                    entry.subtask_id, SubtaskState.DISCARDED, f"forged (audit): {problem}"
                )
        return found

    def _observe_speed(self, entry: Entry, delivered_ms: int, offer: ProviderOffer | None) -> None:
        """Benchmark integrity: the speed this subtask shows against the provider's claimed score.

        The time is the requestor's own, from assignment to delivery: it holds the whole computation
        whatever the provider says its wall time was, so fuel / time never overstates the provider's speed.
        """
        elapsed_ms = delivered_ms - entry.assigned_ms
        metered = capabilities(entry.env_id).metered
        fuel = entry.fuel or 0
        policy = self.config.policy
        if not metered or offer is None or elapsed_ms < policy.speed_min_ms or fuel < policy.speed_min_fuel:
            return
        observed = fuel / elapsed_ms / 1000  # Mfuel/s, the unit of the wasm benchmark score
        claimed = offer.envs.get(entry.env_id, 0.0)
        if self.trust.speed(entry.provider_id, claimed, observed):
            log.warning(
                "provider %s claims %.0f Mfuel/s but its subtasks show at most %.0f",
                entry.provider_id,
                claimed,
                self.trust.get(entry.provider_id).best_speed,
            )


def _digest_on_disk(output: Path) -> str:
    """sha256 of a delivered result as it lies on disk ('' if it is gone or no longer a plain file)."""
    try:
        return file_digest(output.parent, output.name)[0]
    except (FileNotFoundError, UnsafePath) as exc:
        log.error("delivered result %s cannot be read: %s", output, exc)
        return ""


def differences(entry: Entry, output: Path, sha256: str, fuel: int) -> str | None:
    """How a claimed result differs from its re-execution (None: bit-exact, same fuel)."""
    problems = []
    claimed = Path(entry.output_path or "")
    if claimed.name != output.name:
        problems.append(f"output is named {claimed.name!r}, the re-execution wrote {output.name!r}")
    if entry.output_sha256 != sha256:
        offset = first_difference(claimed, output) if claimed.is_file() else None
        where = f" (first difference at byte {offset})" if offset is not None else ""
        problems.append(f"output sha256 differs from the re-execution's{where}")
    if entry.fuel != fuel:
        problems.append(f"claimed fuel {entry.fuel}, the re-execution used {fuel}")
    return "; ".join(problems) or None
