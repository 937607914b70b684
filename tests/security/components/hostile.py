"""A hostile task-api component (world `provider-app`): `compute` does what `params["attack"]` names.

Built once per machine by tests/security/component_build.py; never shipped. Each attack writes what it
observed to /output/result.json (when it gets that far), so the tests can check that nothing escaped.
"""

import json
import os
import random
import socket
import time
from collections.abc import Callable
from typing import Any

from wit_world.imports import types  # type: ignore[import-not-found]


def _attempt(action: Callable[[], Any]) -> dict[str, str]:
    try:
        return {"ok": repr(action())[:200]}
    except Exception as exc:
        return {"error": type(exc).__name__}


def _observe(attack: str) -> dict[str, Any]:
    if attack == "loop":
        while True:
            pass
    if attack == "memory":
        hoard: list[bytearray] = []
        while True:
            hoard.append(bytearray(1 << 20))
    if attack == "sleep":
        time.sleep(5)
        return {"slept": True}
    if attack == "clock":
        return {"time": time.time(), "monotonic": time.monotonic_ns(), "later": time.time()}
    if attack == "random":
        return {"urandom": os.urandom(16).hex(), "system": random.SystemRandom().getrandbits(64)}
    if attack == "files":
        return {
            "etc_passwd": _attempt(lambda: open("/etc/passwd").read()),
            "dotdot": _attempt(lambda: open("/inputs/../../../../etc/hostname").read()),
            "root_listing": _attempt(lambda: os.listdir("/")),
            "write_inputs": _attempt(lambda: open("/inputs/planted", "w").write("x")),
            "proc": _attempt(lambda: open("/proc/self/environ").read()),
        }
    if attack == "network":
        return {"connect": _attempt(lambda: socket.create_connection(("127.0.0.1", 22), timeout=1))}
    if attack == "big-file":
        with open("/output/big.bin", "wb") as handle:
            while True:
                handle.write(bytes(1 << 16))
    if attack == "many-files":
        for index in range(1_000_000):
            open(f"/output/file-{index}", "w").close()
    if attack == "environment":
        return {"environ": dict(os.environ)}
    raise ValueError(f"unknown attack {attack!r}")


class Provider:
    def compute(self, request: Any) -> Any:
        params = json.loads(request.subtask_params_json)
        observed = _observe(params["attack"])
        with open("/output/result.json", "w") as handle:
            handle.write(json.dumps(observed))
        return types.ComputeReply("result.json")

    def run_benchmark(self) -> Any:
        return types.RunBenchmarkReply(1.0)
