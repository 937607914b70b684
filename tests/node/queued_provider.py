"""A real provider (ProviderNode over real gRPC, the honest runners) that uses its queue from its first
request, however long its computes take, and with `--stall-after N` computes only its first N assignments
and then holds every later one uncomputed: so a test can kill it while it holds queued assignments.

    python tests/node/queued_provider.py HOST:PORT --token T --capacity 1 --queue 2 --data-dir D \
        [--stall-after N]

It logs like `taskapi provider join` and stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from apps.sdk.workdir import ProviderTaskDir
from protos import node_pb2 as npb
from runtime.cli_node import parse_address, until_signalled
from runtime.node.compute import ComputeOutcome, ComputeRunner
from runtime.node.provider import ProviderConfig, ProviderNode
from runtime.node.provider_queue import ComputeTimes
from runtime.node.runners import builtin_whitelist, runners_for

log = logging.getLogger("queued_provider")


class QueueAlways(ComputeTimes):
    """The queue used from the first request, whatever the computes take."""

    def queue_pays(self) -> bool:
        return True


class StallAfter:
    """An honest runner that computes its first `computes` assignments and waits forever on the rest."""

    def __init__(self, honest: ComputeRunner, computes: int) -> None:
        self.env_id = honest.env_id
        self.honest = honest
        self.computes_left = computes

    async def compute(
        self, assignment: npb.Assignment, task_dir: ProviderTaskDir, module: Path | None
    ) -> ComputeOutcome:
        if self.computes_left <= 0:
            await asyncio.Event().wait()
        self.computes_left -= 1
        return await self.honest.compute(assignment, task_dir, module)

    async def benchmark(self) -> float:
        return await self.honest.benchmark()

    async def close(self) -> None:
        await self.honest.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("address")
    parser.add_argument("--token", required=True)
    parser.add_argument("--env", default="local")
    parser.add_argument("--capacity", type=int, default=1)
    parser.add_argument("--queue", type=int, default=2)
    parser.add_argument("--stall-after", type=int, help="compute only this many assignments")
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    host, port = parse_address(args.address)
    config = ProviderConfig(host, port, args.token, args.data_dir, capacity=args.capacity, queue=args.queue)
    runners = runners_for([args.env])
    if args.stall_after is not None:
        runners = [StallAfter(runner, args.stall_after) for runner in runners]
    node = ProviderNode(config, runners, builtin_whitelist())
    node.times = QueueAlways()
    log.info("queued provider %s (queue %d) joining %s", node.provider_id, args.queue, args.address)
    asyncio.run(until_signalled(node.run))


if __name__ == "__main__":
    main()
