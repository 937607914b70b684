"""The compiler process's program, run by file path so that it imports nothing but wasmtime.

    python -I compile_child.py MEMORY_BYTES CONFIG_SETTINGS [component] < module.wasm > artifact.cwasm

It limits its address space to MEMORY_BYTES (RLIMIT_AS) once wasmtime is loaded, builds an engine with
CONFIG_SETTINGS (a JSON object of `wasmtime.Config` attributes, `EngineProfile.config_settings`),
validates and compiles the module (with `component`: the component) read from stdin and writes the
serialized artifact to stdout. Exit codes: 0 compiled; `EXIT_INVALID` not a valid module, or a compile
error (the reason on stderr); `EXIT_OUT_OF_MEMORY` an allocation failed (a valid module that needs more
memory than it may use). `environments.wasm.compiler` starts it and reads these.
"""

from __future__ import annotations

import json
import resource
import sys

import wasmtime
import wasmtime.component

EXIT_INVALID = 2
EXIT_OUT_OF_MEMORY = 3


def main(argv: list[str]) -> int:
    memory_bytes, settings = int(argv[0]), json.loads(argv[1])
    component = argv[2:] == ["component"]
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        config = wasmtime.Config()
        for name, value in settings.items():
            setattr(config, name, value)
        engine, data = wasmtime.Engine(config), sys.stdin.buffer.read()
        try:
            if not component:  # a component is validated as it compiles
                wasmtime.Module.validate(engine, data)
        except wasmtime.WasmtimeError as exc:
            sys.stderr.write(str(exc).strip().splitlines()[0])
            return EXIT_INVALID
        try:
            module = (
                wasmtime.component.Component(engine, data) if component else wasmtime.Module(engine, data)
            )
        except wasmtime.WasmtimeError as exc:  # valid, yet it did not compile: allocation failures land here
            reason = str(exc).strip().splitlines()[0]
            sys.stderr.write(reason)
            return EXIT_OUT_OF_MEMORY if "alloc" in reason.lower() else EXIT_INVALID
        sys.stdout.buffer.write(module.serialize())
    except MemoryError:
        return EXIT_OUT_OF_MEMORY
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
