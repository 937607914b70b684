"""Serve a gWASM module as a task-api app:

    python -m environments.wasm [--sha256 HEX] [--env ID] MODULE.wasm requestor PORT [--host H] [--work-dir D]
    python -m environments.wasm [--sha256 HEX] [--env ID] MODULE.wasm provider PORT [--persistent] ...

Everything after MODULE goes to the SDK's app entrypoint (`apps.sdk.server.main`), so a wasm app is
served exactly like a Python app: the node starts `python -m environments.wasm MODULE requestor PORT`
(`WasmEnvironment.app_serving`) as it starts any local app server. `--env` names the installed environment the
module runs in (`wasm` by default; one a plugin adds must be a `WasmEnvironment`). The compile cache is
`$TASKAPI_WASM_CACHE` (default `~/.cache/taskapi/wasm`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from apps.sdk.parent import die_with_parent
from apps.sdk.server import main as serve_app
from environments.registry import UnknownEnvironment, environment_class
from environments.wasm.app_adapter import WasmApp, WasmModule, WasmProviderApp, WasmRequestorApp
from environments.wasm.environment import WasmEnvironment
from environments.wasm.errors import DigestMismatch
from environments.wasm.runs import CompileRequest


def warmed_environment(module: WasmModule, environment: WasmEnvironment) -> WasmEnvironment:
    """`environment` enabled, its first worker starting, and loading the module, while the server starts."""
    asyncio.run(environment.prepare())
    environment.pool.submit_compile(CompileRequest(module.path, module.sha256))
    return environment


def main(argv: list[str]) -> int:
    die_with_parent()  # before the warm-up starts a wasm worker, not only in the SDK's entrypoint
    parser = argparse.ArgumentParser(prog="python -m environments.wasm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sha256", help="refuse to serve unless the module has this sha256")
    parser.add_argument(
        "--env",
        default=WasmEnvironment.env_id,
        help="the installed wasm environment to run in (default: wasm)",
    )
    parser.add_argument("module", type=Path, help="the app's WASI command module")
    parser.add_argument("server_args", nargs=argparse.REMAINDER, help="requestor|provider PORT [options]")
    args = parser.parse_args(argv)
    try:
        module = WasmModule.load(args.module, args.sha256)
    except (OSError, DigestMismatch) as exc:
        parser.error(str(exc))
    try:
        environment = environment_class(args.env)(None)
    except UnknownEnvironment as exc:
        parser.error(str(exc))
    if not isinstance(environment, WasmEnvironment):
        parser.error(f"environment {args.env!r} does not run wasm modules")
    app = WasmApp(module, warmed_environment(module, environment))
    return serve_app(
        args.server_args,
        requestor=lambda: WasmRequestorApp(app),
        provider=lambda: WasmProviderApp(app),
        prog=f"python -m environments.wasm {args.module}",
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
