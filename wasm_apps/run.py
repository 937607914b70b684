"""Run one operation of a gWASM app by hand, with the preopens of docs/wasm-apps.md (a development tool).

    python -m wasm_apps.run tutorialapp create_task --task /tmp/t1 <<< '{"task_id": "t1", ...}'
    python -m wasm_apps.run tutorialapp compute --inputs /tmp/in --output /tmp/out < request.json

APP is an app name under wasm_apps/ or a path to a `.wasm` file. Requestor-side operations get `--task DIR`
as /task (with task_inputs and subtask_outputs read-only); `compute` gets `--inputs` (read-only) and
`--output`. The reply goes to stdout, the module's stderr to stderr. The node's real adapter lives in
environments/wasm; this runner has no sandbox limits beyond WASI's and exists for tests and debugging.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime

from wasm_apps import module_path

PROVIDER_OPERATIONS = frozenset({"compute"})
STATELESS_OPERATIONS = frozenset({"benchmark"})
READ_ONLY_TASK_DIRS = ("task_inputs", "subtask_outputs")
WRITABLE_TASK_DIRS = ("subtask_inputs", "task_outputs")
FUEL_BUDGET = 2**62


@dataclass(frozen=True)
class Invocation:
    """What one run of a module gave."""

    reply: dict[str, Any] | None
    exit_code: int
    stdout: bytes
    stderr: str
    fuel: int

    @property
    def error(self) -> dict[str, Any] | None:
        """The reply's `error` object, if the module refused the call."""
        return None if self.reply is None else self.reply.get("error")


class ModuleRunner:
    """Compiles a module once and runs operations on it, each in a fresh store with fuel metering."""

    def __init__(self, module: Path) -> None:
        config = wasmtime.Config()
        config.consume_fuel = True
        self.engine = wasmtime.Engine(config)
        self.module = wasmtime.Module.from_file(self.engine, str(module))
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()

    def run(
        self,
        operation: str,
        request: dict[str, Any],
        *,
        task_dir: Path | None = None,
        inputs: Path | None = None,
        output: Path | None = None,
    ) -> Invocation:
        """Run `operation` with `request` on stdin and the preopens that operation gets."""
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["app", operation]
        wasi.env = [("TASKAPI_OPERATION", operation)]
        if operation in PROVIDER_OPERATIONS:
            if inputs is None or output is None:
                raise ValueError(f"{operation} needs inputs and output dirs")
            inputs.mkdir(parents=True, exist_ok=True)
            output.mkdir(parents=True, exist_ok=True)
            wasi.preopen_dir(str(inputs), "/inputs", False)
            wasi.preopen_dir(str(output), "/output", True)
        elif operation not in STATELESS_OPERATIONS:
            if task_dir is None:
                raise ValueError(f"{operation} needs a task dir")
            _preopen_task(wasi, task_dir)
        with tempfile.TemporaryDirectory(prefix="wasm-run-") as tmp:
            stdin, stdout, stderr = (Path(tmp) / name for name in ("stdin", "stdout", "stderr"))
            stdin.write_text(json.dumps(request))
            wasi.stdin_file = str(stdin)
            wasi.stdout_file = str(stdout)
            wasi.stderr_file = str(stderr)
            store = wasmtime.Store(self.engine)
            store.set_fuel(FUEL_BUDGET)
            store.set_wasi(wasi)
            instance = self.linker.instantiate(store, self.module)
            start = instance.exports(store)["_start"]
            if not isinstance(start, wasmtime.Func):
                raise TypeError("the module's _start export is not a function")
            exit_code = 0
            try:
                start(store)
            except wasmtime.ExitTrap as exc:
                exit_code = exc.code
            fuel = FUEL_BUDGET - store.get_fuel()
            out = stdout.read_bytes()
            err = stderr.read_text(errors="replace")
        reply = json.loads(out) if exit_code == 0 and out.strip() else None
        return Invocation(reply, exit_code, out, err, fuel)


def _preopen_task(wasi: wasmtime.WasiConfig, task_dir: Path) -> None:
    task_dir.mkdir(parents=True, exist_ok=True)
    wasi.preopen_dir(str(task_dir), "/task", True)
    for name in READ_ONLY_TASK_DIRS + WRITABLE_TASK_DIRS:
        (task_dir / name).mkdir(exist_ok=True)
        wasi.preopen_dir(str(task_dir / name), f"/task/{name}", name in WRITABLE_TASK_DIRS)


def resolve_module(app: str) -> Path:
    """An app name under wasm_apps/ or a path to a module."""
    path = Path(app)
    return path if path.suffix == ".wasm" else module_path(app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wasm_apps.run", description=__doc__.split("\n")[0])
    parser.add_argument("app", help="app name under wasm_apps/ or path to a .wasm module")
    parser.add_argument("operation")
    parser.add_argument("--task", type=Path, help="requestor-side task dir (mounted at /task)")
    parser.add_argument("--inputs", type=Path, help="compute: subtask inputs dir (mounted at /inputs)")
    parser.add_argument("--output", type=Path, help="compute: output dir (mounted at /output)")
    args = parser.parse_args(argv)
    request = json.loads(sys.stdin.read() or "{}")
    runner = ModuleRunner(resolve_module(args.app))
    result = runner.run(args.operation, request, task_dir=args.task, inputs=args.inputs, output=args.output)
    sys.stderr.write(result.stderr)
    sys.stdout.write(result.stdout.decode(errors="replace"))
    print(f"exit code {result.exit_code}, fuel {result.fuel}", file=sys.stderr)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
