"""A real provider (ProviderNode over real gRPC) whose compute runner misbehaves on purpose.

    python tests/node/cheating_provider.py HOST:PORT --token T --env local --mode wrong --data-dir D

Modes:
  wrong  - skips the work and claims the range's first nonce (which does not meet the difficulty), as a
           provider paid per subtask would; Verify must reject every such result.
  raise  - the runner raises for the first `--times` subtasks (0: always), then computes honestly.

It logs like `taskapi provider join` and stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path

from apps.sdk.workdir import ProviderTaskDir
from apps.tutorialapp import pow
from protos import node_pb2 as npb
from runtime.cli_node import parse_address, until_signalled
from runtime.node.compute import ComputeOutcome, ComputeRunner
from runtime.node.provider import ProviderConfig, ProviderNode
from runtime.node.runners import builtin_whitelist, runners_for

log = logging.getLogger("cheating_provider")


class MisbehavingRunner:
    """Wraps an environment's honest runner; lies or raises as its mode says."""

    def __init__(self, honest: ComputeRunner, mode: str, times: int) -> None:
        self.env_id = honest.env_id
        self.honest = honest
        self.mode = mode
        self.times = times
        self.calls = 0

    async def compute(
        self, assignment: npb.Assignment, task_dir: ProviderTaskDir, module: Path | None
    ) -> ComputeOutcome:
        self.calls += 1
        if self.mode == "raise" and (self.times == 0 or self.calls <= self.times):
            log.warning("raising on purpose in subtask %s", assignment.subtask_id)
            raise RuntimeError(f"deliberate failure in compute #{self.calls}")
        if self.mode == "wrong":
            return self._wrong(assignment, task_dir)
        return await self.honest.compute(assignment, task_dir, module)

    def _wrong(self, assignment: npb.Assignment, task_dir: ProviderTaskDir) -> ComputeOutcome:
        params = json.loads(assignment.subtask_params_json)
        text, start = params["input"], params["start"]
        claim = {"start": start, "end": params["end"], "nonce": start, "hash": pow.digest(text, start).hex()}
        output = task_dir.root / assignment.subtask_id / "result.json"
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(claim))
        log.warning("claiming a wrong nonce %d for subtask %s", start, assignment.subtask_id)
        return ComputeOutcome(output, npb.Usage(wall_ms=1, cpu_ns=1_000_000))

    async def benchmark(self) -> float:
        return await self.honest.benchmark()

    async def close(self) -> None:
        await self.honest.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("address")
    parser.add_argument("--token", required=True)
    parser.add_argument("--env", default="local")
    parser.add_argument("--mode", choices=("wrong", "raise"), required=True)
    parser.add_argument("--times", type=int, default=0)
    parser.add_argument("--capacity", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    host, port = parse_address(args.address)
    runners: list[ComputeRunner] = [
        MisbehavingRunner(runner, args.mode, args.times) for runner in runners_for([args.env])
    ]
    config = ProviderConfig(host, port, args.token, args.data_dir, capacity=args.capacity)
    node = ProviderNode(config, runners, builtin_whitelist())
    log.info("cheating provider %s (%s) joining %s", node.provider_id, args.mode, args.address)
    asyncio.run(until_signalled(node.run))


if __name__ == "__main__":
    main()
