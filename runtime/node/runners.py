"""Which compute runners and whitelist a provider starts with."""

from __future__ import annotations

import hashlib

from runtime.catalog import builtin_apps
from runtime.node.compute import ComputeRunner, LocalRunner
from runtime.node.provider import Whitelist

RUNNERS: dict[str, type] = {"local": LocalRunner}


def runners_for(envs: list[str]) -> list[ComputeRunner]:
    """One runner per requested environment; an unknown environment is an error naming the known ones."""
    unknown = [env for env in envs if env not in RUNNERS]
    if unknown:
        raise ValueError(f"unknown environments {unknown}; this provider can run {sorted(RUNNERS)}")
    return [RUNNERS[env]() for env in envs]


def builtin_whitelist() -> Whitelist:
    """The shipped apps: their wasm modules by sha256 and their local builds by name."""
    whitelist = Whitelist()
    for app in builtin_apps().values():
        if "local" in app.commands:
            whitelist.local_apps.add(app.name)
        if "wasm" in app.commands:
            module = app.commands["wasm"][-1]
            with open(module, "rb") as handle:
                whitelist.wasm_modules.add(hashlib.sha256(handle.read()).hexdigest())
    return whitelist
