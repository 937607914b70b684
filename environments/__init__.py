"""Environments: where payloads run (wasm on wasmtime; docker later), behind one abstraction.

`environments.base` defines `Environment` and `Runtime`, `environments.status` their statuses and
transitions, `environments.registry` finds installed environments through entry points.
"""
