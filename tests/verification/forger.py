"""A provider that forges wasm results on purpose, in-process (`ForgingRunner`) or as a real process.

    python -m verification.forger HOST:PORT --token T --strategy flip --data-dir D [--honest-first 9]
        (with tests/ on PYTHONPATH)

The runner always computes honestly first, so it knows the truth: a result counts as *forged* exactly
when its bytes or its fuel differ from the honest run's. Forged subtask ids are kept in `forged` and
appended to `<data_dir>/forged.txt`, the ground truth the tests and the benchmark compare against.

Strategies (each after `honest_first` honest results, then on each result with probability `rate`):
  flip      - one byte of the output changed (a mandelbrot pixel: plausible, rarely seen by spot checks)
  lazy      - tutorialapp: claims "no nonce in this range" and the fuel of its previous result, as a
              provider that skipped the work would
  fuel_low  - honest bytes, less fuel than the run used
  fuel_high - honest bytes, more fuel than the run used (overbilling)
  copy      - the previous subtask's output and fuel, as its own
  invert    - every pixel inverted (past a PPM header): deterministic, so two such forgers agree (collusion)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
from pathlib import Path

from apps.sdk.workdir import ProviderTaskDir
from protos import node_pb2 as npb
from runtime.cli_node import parse_address, until_signalled
from runtime.node.compute import ComputeOutcome, ComputeRunner
from runtime.node.provider import ProviderConfig, ProviderNode
from runtime.node.runners import builtin_whitelist, runners_for

log = logging.getLogger("forger")

STRATEGIES = ("flip", "lazy", "fuel_low", "fuel_high", "copy", "invert")
PPM_HEADER_LINES = 3


class ForgingRunner:
    """Wraps an honest runner; forges its results as the strategy says, and records what it forged."""

    def __init__(
        self,
        honest: ComputeRunner,
        strategy: str,
        *,
        honest_first: int = 0,
        rate: float = 1.0,
        seed: int = 0,
        record: Path | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; known: {STRATEGIES}")
        self.env_id = honest.env_id
        self.honest = honest
        self.strategy = strategy
        self.honest_first = honest_first
        self.rate = rate
        self.record = record
        self.calls = 0
        self.forged: set[str] = set()
        self.honest_ids: set[str] = set()
        self._rng = random.Random(seed)
        self._previous: tuple[bytes, int] | None = None

    async def compute(
        self, assignment: npb.Assignment, task_dir: ProviderTaskDir, module: Path | None
    ) -> ComputeOutcome:
        outcome = await self.honest.compute(assignment, task_dir, module)
        truth = outcome.output.read_bytes()
        fuel = int(outcome.usage.fuel)
        previous, self._previous = self._previous, (truth, fuel)
        self.calls += 1
        if self.calls <= self.honest_first or self._rng.random() >= self.rate:
            self.honest_ids.add(assignment.subtask_id)
            return outcome
        data, claimed_fuel = self._forge(truth, fuel, previous)
        if data == truth and claimed_fuel == fuel:
            self.honest_ids.add(assignment.subtask_id)
            return outcome
        outcome.output.write_bytes(data)
        self.forged.add(assignment.subtask_id)
        if self.record is not None:
            with open(self.record, "a") as handle:
                handle.write(assignment.subtask_id + "\n")
        log.warning("forged subtask %s (%s)", assignment.subtask_id, self.strategy)
        usage = npb.Usage()
        usage.CopyFrom(outcome.usage)
        usage.fuel = claimed_fuel
        return ComputeOutcome(outcome.output, usage)

    def _forge(self, truth: bytes, fuel: int, previous: tuple[bytes, int] | None) -> tuple[bytes, int]:
        if self.strategy == "flip":
            return flip_byte(truth, self._rng), fuel
        if self.strategy == "invert":
            start = pixels_start(truth)
            return truth[:start] + bytes(byte ^ 0xFF for byte in truth[start:]), fuel
        if self.strategy == "fuel_low":
            return truth, fuel - max(1, fuel // 10)
        if self.strategy == "fuel_high":
            return truth, fuel + max(1, fuel // 10)
        if previous is None:
            return truth, fuel
        if self.strategy == "copy":
            return previous
        return claim_nothing_found(truth), previous[1]

    async def benchmark(self) -> float:
        return await self.honest.benchmark()

    async def close(self) -> None:
        await self.honest.close()


def pixels_start(data: bytes) -> int:
    """Where a PPM image's pixels begin (0 for anything else)."""
    if not data.startswith(b"P6"):
        return 0
    return len(b"\n".join(data.split(b"\n", PPM_HEADER_LINES)[:PPM_HEADER_LINES])) + 1


def flip_byte(data: bytes, rng: random.Random) -> bytes:
    """One byte changed: past a PPM header (a pixel) if there is one, else anywhere."""
    offset = rng.randrange(pixels_start(data), len(data))
    changed = bytearray(data)
    changed[offset] ^= 0x01
    return bytes(changed)


def claim_nothing_found(truth: bytes) -> bytes:
    """A tutorialapp result claiming its range holds no nonce, in the app's own JSON format (other
    apps' results are kept: only their fuel is then made up)."""
    try:
        claim = json.loads(truth)
    except ValueError:
        return truth
    claim["nonce"], claim["hash"] = None, None
    return json.dumps(claim).encode()


def forged_ids(data_dir: Path) -> set[str]:
    """What a forger process recorded as forged."""
    record = data_dir / "forged.txt"
    return set(record.read_text().split()) if record.is_file() else set()


def write_benchmark(data_dir: Path, score: float) -> None:
    """Pre-set the provider's stored benchmark score (skips the measurement; may claim anything)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "benchmarks.json").write_text(json.dumps({"wasm": score}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("address")
    parser.add_argument("--token", required=True)
    parser.add_argument("--strategy", choices=STRATEGIES, required=True)
    parser.add_argument("--honest-first", type=int, default=0)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--capacity", type=int, default=1)
    parser.add_argument("--benchmark-score", type=float, help="Claim this wasm benchmark score.")
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.benchmark_score is not None:
        write_benchmark(args.data_dir, args.benchmark_score)
    host, port = parse_address(args.address)
    runners: list[ComputeRunner] = [
        ForgingRunner(
            runner,
            args.strategy,
            honest_first=args.honest_first,
            rate=args.rate,
            seed=args.seed,
            record=args.data_dir / "forged.txt",
        )
        for runner in runners_for(["wasm"])
    ]
    config = ProviderConfig(host, port, args.token, args.data_dir, capacity=args.capacity)
    node = ProviderNode(config, runners, builtin_whitelist())
    log.info("forging provider %s (%s) joining %s", node.provider_id, args.strategy, args.address)
    asyncio.run(until_signalled(node.run))


if __name__ == "__main__":
    main()
