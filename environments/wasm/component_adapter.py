"""Serves a task-api component (protos/taskapi.wit) through the same adapter as a WASI command module.

The adapter (`environments.wasm.app_adapter`) speaks the JSON guest contract of docs/wasm-apps.md; this
module translates each operation of that contract into a call of the component's typed export and the
typed result back into the contract's reply, so both kinds of app share the state-machine checks,
preopens, seeds, limits and reply validation. A component's `error` result becomes the contract's
`{"error": {"code", "message"}}`, so it reaches the caller with the same gRPC status.
"""

from __future__ import annotations

WIT_PACKAGE = "taskapi:app@0.1.0"
"""The package of protos/taskapi.wit (a test checks they agree)."""


def interface_name(side: str) -> str:
    """The export name of one side's interface, e.g. `taskapi:app/provider@0.1.0`."""
    name, version = WIT_PACKAGE.split("@")
    return f"{name}/{side}@{version}"
