"""A real provider (ProviderNode over real gRPC, the honest runners) that uses its queue from its first
request, however long its computes take: so a test can kill it while it holds queued assignments.

    python tests/node/queued_provider.py HOST:PORT --token T --capacity 1 --queue 2 --data-dir D

It logs like `taskapi provider join` and stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from runtime.cli_node import parse_address, until_signalled
from runtime.node.provider import ProviderConfig, ProviderNode
from runtime.node.provider_queue import ComputeTimes
from runtime.node.runners import builtin_whitelist, runners_for

log = logging.getLogger("queued_provider")


class QueueAlways(ComputeTimes):
    """The queue used from the first request, whatever the computes take."""

    def queue_pays(self) -> bool:
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("address")
    parser.add_argument("--token", required=True)
    parser.add_argument("--env", default="local")
    parser.add_argument("--capacity", type=int, default=1)
    parser.add_argument("--queue", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    host, port = parse_address(args.address)
    config = ProviderConfig(host, port, args.token, args.data_dir, capacity=args.capacity, queue=args.queue)
    node = ProviderNode(config, runners_for([args.env]), builtin_whitelist())
    node.times = QueueAlways()
    log.info("queued provider %s (queue %d) joining %s", node.provider_id, args.queue, args.address)
    asyncio.run(until_signalled(node.run))


if __name__ == "__main__":
    main()
