"""Control API latency while hostile peers attack the requestor (issue 18, item 4).

Starts `taskapi requestor serve` (default limits), measures GetTask round trips from a control client on
127.0.0.1 while quiet, then while each attack runs from a separate attacker process (the idle sockets
dial from 127.0.0.2, another loopback address, so they do not use up the operator's per-address
allowance; the other attacks use 8 connections from 127.0.0.1):

- idle: 1100 TCP connections that never send a byte (1100 once exhausted 1024 descriptors);
- unauthenticated: calls with a wrong token, back to back, on 8 connections;
- 600 KB ids: GetTask with a 600 KB task id (once stalled every call for 27 s), back to back; now over
  GetTask's 64 KiB message limit, refused at the length prefix;
- 60 KB ids: GetTask with a 60 KB task id, just under that limit: read, decoded, then refused
  INVALID_ARGUMENT for its length, back to back;
- oversize: 8 MiB messages, refused before their bodies are read, back to back;
- headers only: 200 calls that send their headers and never a message (they hold a handler each).

Prints p50 / p95 / max of GetTask per phase and the ratio of each to the quiet phase; asserts nothing.

    python bench/control_under_attack.py [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grpclib.client import Channel
from grpclib.exceptions import GRPCError, StreamTerminatedError

from apps.sdk.process import free_port
from protos import node_pb2 as npb
from protos.node_grpc import ControlStub
from runtime.node.requestor_service import bearer

HOST = "127.0.0.1"
ATTACKER = "127.0.0.2"
TASKAPI = str(Path(sys.executable).with_name("taskapi"))
ATTACKS = ("idle", "unauthenticated", "600 KB ids", "60 KB ids", "oversize", "headers only")


async def attack(kind: str, port: int, token: str) -> None:
    """Run one attack until killed."""
    if kind == "idle":
        sockets = []
        for _ in range(1100):
            sock = socket.socket()
            sock.bind((ATTACKER, 0))
            with contextlib.suppress(OSError):
                sock.connect((HOST, port))
            sockets.append(sock)
        await asyncio.Event().wait()
    channels = [Channel(HOST, port) for _ in range(8)]  # 8 connections: within the per-address allowance
    stubs = [ControlStub(channel) for channel in channels]
    if kind == "headers only":
        opened = []
        for index in range(200):
            stream = stubs[index % len(stubs)].GetTask.open(metadata=bearer(token))
            await stream.__aenter__()
            await stream.send_request()
            opened.append(stream)
        await asyncio.Event().wait()
    requests = {
        "unauthenticated": (npb.GetTaskRequest(task_id="t"), bearer("wrong-token")),
        "600 KB ids": (npb.GetTaskRequest(task_id="i" * 600_000), bearer(token)),
        "60 KB ids": (npb.GetTaskRequest(task_id="i" * 60_000), bearer(token)),
        "oversize": (npb.GetTaskRequest(task_id="o" * (8 * 1024 * 1024)), bearer(token)),
    }
    request, metadata = requests[kind]

    async def hammer(stub: ControlStub) -> None:
        while True:
            with contextlib.suppress(GRPCError, OSError, StreamTerminatedError):
                await stub.GetTask(request, metadata=metadata, timeout=30)

    await asyncio.gather(*(hammer(stub) for stub in stubs))


async def latencies(port: int, token: str, calls: int) -> list[float]:
    channel = Channel(HOST, port)
    stub = ControlStub(channel)
    timings = []
    try:
        for _ in range(calls):
            started = time.perf_counter()
            with contextlib.suppress(GRPCError):  # NOT_FOUND: the round trip is what is measured
                await stub.GetTask(
                    npb.GetTaskRequest(task_id="no-such-task"), metadata=bearer(token), timeout=60
                )
            timings.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)
    finally:
        channel.close()
    return timings


def summary(timings: list[float]) -> tuple[float, float, float]:
    ordered = sorted(timings)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1], ordered[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--attack", choices=ATTACKS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:
        asyncio.run(attack(args.attack, args.port, args.token))
        return
    with tempfile.TemporaryDirectory() as data:
        port = free_port(HOST)
        requestor = subprocess.Popen(
            [TASKAPI, "requestor", "serve", "--listen", f"{HOST}:{port}", "--data-dir", data],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            token_file = Path(data) / "control-token"
            while not token_file.is_file():
                time.sleep(0.1)
            time.sleep(1.0)
            token = token_file.read_text().strip()
            quiet = summary(asyncio.run(latencies(port, token, args.calls)))
            print(f"{'phase':16} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}   ratios to quiet (p50, p95)")
            print(f"{'quiet':16} {quiet[0] * 1e3:8.2f} {quiet[1] * 1e3:8.2f} {quiet[2] * 1e3:8.2f}")
            for kind in ATTACKS:
                attacker = subprocess.Popen(
                    [sys.executable, __file__, "--attack", kind, "--port", str(port), "--token", token],
                    env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
                )
                time.sleep(2.0)
                try:
                    p50, p95, worst = summary(asyncio.run(latencies(port, token, args.calls)))
                finally:
                    attacker.kill()
                    attacker.wait()
                ratios = f"{p50 / quiet[0]:.2f}x, {p95 / quiet[1]:.2f}x"
                print(f"{kind:16} {p50 * 1e3:8.2f} {p95 * 1e3:8.2f} {worst * 1e3:8.2f}   {ratios}")
                time.sleep(1.0)
        finally:
            requestor.terminate()
            requestor.wait()


if __name__ == "__main__":
    main()
