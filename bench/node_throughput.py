"""Node throughput: tutorialapp subtasks end to end (requestor -> provider -> verify) over loopback gRPC.

One process holds a requestor node and its providers, as `taskapi run` does, talking the real node
protocol over 127.0.0.1; the apps run where they always do (local: Python child processes; wasm: the
wasm environment). Four workloads, each with 1 then 2 providers, in the same run:

- trivial: many ranges of a few nonces each (the node's own overhead per subtask dominates);
- CPU-bound: few ranges of many nonces each (the hashing dominates), for the 2-vs-1 provider ratio;
- each again "trusted": on a requestor whose providers first ran an untimed trivial task of
  WARM_UP_SUBTASKS subtasks, so they are trusted (re-execution at its floor rate; fresh providers have
  every result re-run for their first 10, then a falling share) and their worker pools are warm, as on a
  node that has run a while. On this one machine the requestor's re-executions run on the providers' cores.

The tasks use inputs whose first valid nonce lies near the end of the first round, so nearly every range is
computed in full, whichever provider takes it. Rates run from the task's creation (timed apart: it
includes starting the app server) to its end. CPU-ms per subtask counts this process (requestor, providers)
and every process below it (app servers, wasm workers, running or ended), over the whole run (starting
the app server included; a trusted run from the end of its warm-up). The time
split per subtask is measured cheaply in the node: scheduling (the requestor choosing and recording a
subtask, the app's NextSubtask included), transfer (receiving, hashing and storing the result), compute
(the provider's runner), verify (the app's Verify and any re-execution), and idle: what is left of a
provider compute slot's time per subtask beyond its compute (RequestWork round trips, waiting for work or
for a place among the unjudged results; a result's upload and verdict overlap the next compute).
Scheduling and verify are per subtask, batches shared out among their subtasks. Each run also counts the
node-protocol calls (streams) the requestor served a subtask, for the busiest methods.

Then, in the same run: the cost of a task as it grows (2 providers, `--scaling-subtasks A B` trivial
subtasks: wall and CPU per subtask of the bigger over the smaller; 1.0 is linear), and the peers on the
same trivial work (the same nonce ranges, Python's hashing, unsandboxed, unverified): Dask's LocalCluster
with 2 worker processes and Ray with 2 CPUs, each where it is installed (`pip install .[bench]`), as
ratios to the node. Prints numbers and ratios; asserts nothing.

`--wasm-build component` runs tutorialapp's Python build as a task-api component (apps/tutorialapp/wasm,
whose requestor calls keep a warm instance and append to the plan's journal) instead of the shipped C
module (wasm_apps/tutorialapp, a fresh instance a call, appending to its plan's journal); it is compiled once
before any timing.

    python bench/node_throughput.py [--env wasm|local] [--trivial-subtasks N] [--cpu-subtasks K]
                                    [--cpu-repeats R] [--capacity C] [--queue Q] [--no-reexecute]
                                    [--scaling-subtasks A B]
                                    [--wasm-build c|component]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import resource
import secrets
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grpclib.events import RecvRequest, listen

from apps.sdk.workdir import ProviderTaskDir
from apps.tutorialapp import pow
from environments.wasm import WasmConfig, WasmEnvironment
from environments.wasm.app_adapter import WasmModule
from environments.wasm.runs import CompileLimits
from protos import node_pb2 as npb
from runtime.appmanager import AppManager
from runtime.node.compute import ComputeOutcome, ComputeRunner
from runtime.node.provider import DEFAULT_QUEUE, ProviderConfig, ProviderNode
from runtime.node.requestor import ActiveTask, RequestorConfig, RequestorNode
from runtime.node.requestor_service import serve_requestor
from runtime.node.runners import runners_for, whitelist_of
from runtime.node.scheduling import Action, AskApp
from runtime.node.verification import VerificationConfig

HOST = "127.0.0.1"
# First valid nonce 4032 of 4096 at difficulty 12: ranges [0, 4032) are all searched in full.
TRIVIAL_TEXT, TRIVIAL_DIFFICULTY = "bench-trivial-148", 12
TRIVIAL = {"input": TRIVIAL_TEXT, "difficulty": TRIVIAL_DIFFICULTY}
# First valid nonces near the end of the first round, so every range but the last is searched in full:
# 15057705 of 2**24 (wasm: about 0.2 s a range of 20; 18 ranges computed) and 2063955 of 2**21 (Python,
# local; all 20 computed). An even count splits evenly between 2 providers: 15 ranges (16 a round) capped
# the 2-vs-1 ratio at 15 / 8 = 1.875x before any overhead.
CPU_BOUND = {
    "wasm": {"input": "bench-cpu24-17", "difficulty": 24},
    "local": {"input": "bench-cpu-30", "difficulty": 21},
}
# Enough accepted results for each of 2 providers to reach re-execution's floor rate (docs/verification.md:
# probation 10 / floor 0.05 = 200 clean results).
WARM_UP_SUBTASKS = 480
GOALS = {"trivial subtasks/s": 500.0, "2 vs 1 providers, CPU-bound": 1.8}
COMPONENT_BUILD = Path(__file__).resolve().parents[1] / "apps" / "tutorialapp" / "wasm"


@dataclass
class Split:
    """Seconds spent in each stage, summed over subtasks, and how many times each ran."""

    seconds: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("scheduling", "transfer", "compute", "verify"), 0.0)
    )
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("scheduling", "transfer", "compute", "verify"), 0)
    )

    def add(self, stage: str, began: float, count: int = 1) -> None:
        """`count` subtasks went through `stage` together since `began`."""
        self.seconds[stage] += time.perf_counter() - began
        self.counts[stage] += count


class TimedRequestor(RequestorNode):
    """The requestor, timing its scheduling, result transfer and verification."""

    split: Split

    async def _ask_app(self, asks: list[AskApp]) -> list[Action]:
        began = time.perf_counter()
        try:
            return await super()._ask_app(asks)
        finally:
            self.split.add("scheduling", began, len(asks))

    async def receive_result(
        self, header: npb.ResultHeader, data: AsyncIterator[bytes]
    ) -> asyncio.Future[tuple[str, str]]:
        began = time.perf_counter()
        try:
            return await super().receive_result(header, data)
        finally:
            self.split.add("transfer", began)

    async def _verify(
        self, active: ActiveTask, subtask_id: str, judged: tuple[str, str] | None = None
    ) -> tuple[str, str]:
        began = time.perf_counter()
        try:
            return await super()._verify(active, subtask_id, judged)
        finally:
            self.split.add("verify", began)


class TimedRunner:
    """A provider's runner, timing each compute."""

    def __init__(self, runner: ComputeRunner, split: Split) -> None:
        self.env_id = runner.env_id
        self.runner = runner
        self.split = split

    async def compute(
        self, assignment: npb.Assignment, task_dir: ProviderTaskDir, module: Path | None
    ) -> ComputeOutcome:
        began = time.perf_counter()
        try:
            return await self.runner.compute(assignment, task_dir, module)
        finally:
            self.split.add("compute", began)

    async def benchmark(self) -> float:
        return await self.runner.benchmark()

    async def close(self) -> None:
        await self.runner.close()


@dataclass(frozen=True)
class Run:
    label: str
    providers: int
    wall_s: float
    created_s: float
    accepted: int
    split: Split
    cpu_s: float
    """CPU seconds of this process and of the app server processes over the run."""
    calls: Counter[str]
    """Node-protocol calls (streams) the requestor served, by method."""

    @property
    def rate(self) -> float:
        return self.accepted / self.wall_s

    @property
    def cpu_ms(self) -> float:
        """CPU-ms per accepted subtask."""
        return 1000 * self.cpu_s / max(1, self.accepted)


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and all its descendants: the children it has reaped, and
    every one still running (with what those reaped of their own), so that a difference of two readings
    counts each process's CPU in between, whether it ended in between or not."""
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + reaped.ru_utime + reaped.ru_stime + sum(map(_process_cpu, _descendants()))


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _descendants() -> list[int]:
    """Every process below this one (from /proc: the children of each of their threads)."""
    found: list[int] = []
    parents = [os.getpid()]
    while parents:
        pid = parents.pop()
        try:
            children = [
                int(c)
                for t in Path(f"/proc/{pid}/task").iterdir()
                for c in (t / "children").read_text().split()
            ]
        except OSError:  # it ended meanwhile
            continue
        found.extend(children)
        parents.extend(children)
    return found


def _process_cpu(pid: int) -> float:
    """CPU seconds of a running process and of the children it reaped (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime + cutime + cstime) / CLOCK_TICKS


async def run_task(
    env: str,
    params: dict[str, Any],
    providers: int,
    capacity: int,
    queue: int,
    work: Path,
    label: str,
    config: RequestorConfig,
    warm_up: dict[str, Any] | None = None,
) -> Run:
    """One task from submission to its end, with `providers` providers joined before it is submitted.

    With `warm_up`, a task of those parameters runs first on the same requestor and providers, untimed and
    uncounted: its accepted results earn the providers trust, so re-execution falls to its trusted rate, and
    its computes start their worker pools, as on a node that has been running for a while."""
    split = Split()
    cpu_began = cpu_seconds()
    node = TimedRequestor(work / "requestor", config, app_manager=AppManager())
    node.split = split
    await node.start()
    token = secrets.token_hex(16)
    server, port = await serve_requestor(node, HOST, 0, provider_token=token, control_token=token)
    calls: Counter[str] = Counter()

    async def count(event: RecvRequest) -> None:
        calls[event.method_name.rsplit("/", 1)[-1]] += 1

    listen(server, RecvRequest, count)
    stop = asyncio.Event()
    whitelist = whitelist_of(app for app in AppManager().inventory().apps if app.enabled)
    runners = [[TimedRunner(runner, split) for runner in runners_for([env])] for _ in range(providers)]
    nodes = [
        ProviderNode(
            ProviderConfig(HOST, port, token, work / f"provider-{index}", capacity=capacity, queue=queue),
            list(provider_runners),
            whitelist,
        )
        for index, provider_runners in enumerate(runners)
    ]
    runs = [asyncio.create_task(provider.run(stop)) for provider in nodes]
    try:
        while not all(node.store.provider_offer(p.provider_id) for p in nodes):  # joined, benchmarked
            await asyncio.sleep(0.01)
        if warm_up is not None:
            warm = await node.wait_for_task(await node.submit_task("tutorialapp", env, warm_up, 10_000))
            if warm.state != "finished":
                raise SystemExit(f"{label}: warm-up task {warm.state}: {warm.reason}")
            split = node.split = Split()
            for runner in itertools.chain.from_iterable(runners):
                runner.split = split
            calls.clear()
            cpu_began = cpu_seconds()
        began = time.perf_counter()
        task_id = await node.submit_task("tutorialapp", env, params, 10_000)
        created_s = time.perf_counter() - began
        status = await node.wait_for_task(task_id)
        wall_s = time.perf_counter() - began - created_s
        cpu_s = cpu_seconds() - cpu_began  # before the teardown, whose processes may end unreaped by us
    finally:
        stop.set()
        await asyncio.gather(*runs, return_exceptions=True)
        server.close()
        await server.wait_closed()
        await node.stop()
    if status.state != "finished":
        raise SystemExit(f"{label}: task {status.state}: {status.reason}")
    accepted = status.subtasks_by_state.get("accepted", 0)
    return Run(label, providers, wall_s, created_s, accepted, split, cpu_s, calls)


def report(run: Run, capacity: int) -> None:
    split = run.split
    per = {stage: 1000 * seconds / max(1, split.counts[stage]) for stage, seconds in split.seconds.items()}
    # A provider compute slot's time per accepted subtask; what its compute leaves of it is idling.
    slot_ms = 1000 * run.wall_s * run.providers * capacity / max(1, run.accepted)
    per["idle"] = slot_ms - per["compute"]
    parts = ", ".join(f"{stage} {ms:.1f}" for stage, ms in per.items())
    print(
        f"  {run.label:<18} {run.providers} provider(s): {run.accepted:4d} subtasks in {run.wall_s:6.2f} s"
        f" = {run.rate:6.1f}/s (+{run.created_s * 1000:.0f} ms creating the task), {run.cpu_ms:.1f} CPU-ms a"
        f" subtask | ms per subtask: {parts}"
    )
    busiest = ("RequestWork", "SubmitResults", "SubmitResult", "Heartbeat")
    per_call = ", ".join(f"{name} {run.calls[name] / max(1, run.accepted):.2f}" for name in busiest)
    print(f"    node-protocol calls a subtask: {per_call}")


async def use_component_build() -> None:
    """Enable tutorialapp's component build alone for wasm in this run's data dir, compiled into the cache
    first (20 MB of CPython: a loaded machine can take longer than a run's 60 s compile limit)."""
    manager = AppManager()
    component = manager.add(COMPONENT_BUILD, enable=True)
    for app in manager.find("tutorialapp", "wasm"):
        if app.app_id != component.app_id:
            manager.disable(app.app_id)
    env = WasmEnvironment(WasmConfig(compile=CompileLimits(time_s=900)))
    await env.prepare()
    try:
        module = WasmModule.load(COMPONENT_BUILD / "tutorialapp.wasm")
        await env.compile(module.path, module.sha256)
    finally:
        await env.clean_up()


def trivial_ranges(subtasks: int) -> list[tuple[int, int]]:
    """The nonce ranges of a trivial task of `subtasks` ranges, up to the answer (what the node computes)."""
    size = max(1, math.ceil(2**TRIVIAL_DIFFICULTY / subtasks))
    answer = pow.search(TRIVIAL_TEXT, TRIVIAL_DIFFICULTY, 0, 2**TRIVIAL_DIFFICULTY)
    assert answer is not None
    return [(start, start + size) for start in range(0, answer + 1, size)]


def search_range(bounds: tuple[int, int]) -> int | None:
    """One peer task: the trivial subtask's work, in Python."""
    return pow.search(TRIVIAL_TEXT, TRIVIAL_DIFFICULTY, *bounds)


def dask_rate(ranges: list[tuple[int, int]]) -> float | None:
    """Tasks per second on Dask's LocalCluster, 2 worker processes of 1 thread (None: not installed)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        return None
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        client.gather(client.map(search_range, ranges[:8], pure=False))  # workers warm
        began = time.perf_counter()
        client.gather(client.map(search_range, ranges, pure=False))
        return len(ranges) / (time.perf_counter() - began)


def ray_rate(ranges: list[tuple[int, int]]) -> float | None:
    """Tasks per second on Ray with 2 CPUs (None: not installed)."""
    try:
        import ray
    except ImportError:
        return None
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(search_range)
        ray.get([remote.remote(bounds) for bounds in ranges[:8]])  # workers warm
        began = time.perf_counter()
        ray.get([remote.remote(bounds) for bounds in ranges])
        return len(ranges) / (time.perf_counter() - began)
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--env", default="wasm", choices=("wasm", "local"))
    parser.add_argument("--trivial-subtasks", type=int, default=256, help="ranges splitting 4096 nonces")
    parser.add_argument("--cpu-subtasks", type=int, default=20, help="ranges of the first round")
    parser.add_argument(
        "--cpu-repeats", type=int, default=3, help="pairs of CPU-bound runs (1 then 2 providers) per workload"
    )
    parser.add_argument("--capacity", type=int, default=1, help="subtasks each provider computes at once")
    parser.add_argument(
        "--queue",
        type=int,
        default=DEFAULT_QUEUE,
        help="assignments each provider may hold beyond --capacity",
    )
    parser.add_argument(
        "--no-reexecute", action="store_true", help="the app's Verify alone (no re-execution of wasm results)"
    )
    parser.add_argument(
        "--scaling-subtasks",
        type=int,
        nargs=2,
        default=(400, 1600),
        metavar=("A", "B"),
        help="trivial task sizes whose cost per subtask is compared",
    )
    parser.add_argument(
        "--wasm-build", default="c", choices=("c", "component"), help="tutorialapp's wasm build (see above)"
    )
    args = parser.parse_args()
    config = RequestorConfig(verification=VerificationConfig(reexecute=not args.no_reexecute))
    os.environ.setdefault("TASKAPI_DATA_DIR", tempfile.mkdtemp(prefix="taskapi-bench-data-"))
    if args.wasm_build == "component":
        asyncio.run(use_component_build())
    cpus = len(os.sched_getaffinity(0))
    reexecution = "off" if args.no_reexecute else "on"
    build = f" ({args.wasm_build} build)" if args.env == "wasm" else ""
    print(
        f"node throughput: {args.env}{build}, capacity {args.capacity}, queue {args.queue},"
        f" re-execution {reexecution},"
        f" {cpus} CPUs"
    )
    trivial = {**TRIVIAL, "subtasks": args.trivial_subtasks}
    cpu_bound = {**CPU_BOUND[args.env], "subtasks": args.cpu_subtasks}
    warm_up = {**TRIVIAL, "subtasks": WARM_UP_SUBTASKS}
    workloads: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
        ("trivial", trivial, None),
        ("trivial, trusted", trivial, warm_up),
        ("CPU-bound", cpu_bound, None),
        ("CPU-bound, trusted", cpu_bound, warm_up),
    ]
    runs: dict[tuple[str, int], list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="taskapi-bench-") as tmp:
        for label, params, warm in workloads:
            repeats = args.cpu_repeats if label.startswith("CPU-bound") else 1
            for repeat in range(repeats):  # 1 then 2 providers, back to back, each time
                for providers in (1, 2):
                    work = Path(tmp) / f"{label}-{providers}-{repeat}"
                    run = asyncio.run(
                        run_task(
                            args.env, params, providers, args.capacity, args.queue, work, label, config, warm
                        )
                    )
                    runs.setdefault((label, providers), []).append(run)
                    report(run, args.capacity)
    best_trivial = max(
        run.rate for (label, _), done in runs.items() if label.startswith("trivial") for run in done
    )
    print(f"trivial subtasks/s (best): {best_trivial:.1f} (goal >= {GOALS['trivial subtasks/s']:.0f})")
    for label, _, _ in workloads:
        pairs = list(zip(runs[label, 1], runs[label, 2], strict=True))
        ratios = sorted(two.rate / one.rate for one, two in pairs)
        spread = (
            f" (median of {len(ratios)} pairs; {ratios[0]:.2f}-{ratios[-1]:.2f})" if len(ratios) > 1 else ""
        )
        # With no overhead at all, 2 providers finish n subtasks in the time 1 takes for ceil(n / 2).
        cap = statistics.median(two.accepted / math.ceil(two.accepted / 2) for _, two in pairs)
        print(
            f"2 vs 1 providers, {label}: {statistics.median(ratios):.2f}x{spread};"
            f" the split of its subtasks in two caps it at {cap:.2f}x"
        )
    print(f"(goal for CPU-bound: >= {GOALS['2 vs 1 providers, CPU-bound']}x)")
    small, big = args.scaling_subtasks
    scaling = {}
    with tempfile.TemporaryDirectory(prefix="taskapi-bench-") as tmp:
        for size in (small, big):
            params = {**TRIVIAL, "subtasks": size}
            run = asyncio.run(
                run_task(
                    args.env, params, 2, args.capacity, args.queue, Path(tmp) / str(size), "scaling", config
                )
            )
            scaling[size] = run
            report(run, args.capacity)
    wall_ratio = scaling[small].rate / scaling[big].rate
    cpu_ratio = scaling[big].cpu_ms / scaling[small].cpu_ms
    print(
        f"cost per subtask, {big} vs {small} subtasks: wall {wall_ratio:.2f}x, CPU {cpu_ratio:.2f}x"
        " (linear: 1x)"
    )
    (node,) = runs["trivial, trusted", 2]
    ranges = trivial_ranges(args.trivial_subtasks)
    for peer, rate in (
        ("Dask LocalCluster, 2 processes", dask_rate(ranges)),
        ("Ray, 2 CPUs", ray_rate(ranges)),
    ):
        if rate is None:
            print(f"{peer}: not installed (pip install .[bench])")
        else:
            print(
                f"{peer}: {rate:.0f} tasks/s; the node (2 trusted providers) is {node.rate / rate:.3f}x of it"
            )


if __name__ == "__main__":
    main()
