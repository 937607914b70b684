"""Valid descriptors to start from: tests change one thing and expect exactly that to be reported."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

EMPTY_MODULE = b"\0asm\x01\0\0\0"
"""The smallest valid wasm module; the app manager only hashes it."""

WriteDescriptor = Callable[..., Path]


def wasm_descriptor(module: bytes = EMPTY_MODULE, **fields: Any) -> dict[str, Any]:
    """A valid wasm descriptor for a module with these bytes, `fields` replacing or adding top-level keys."""
    data: dict[str, Any] = {
        "name": "demo",
        "version": "1.0.0",
        "environment": "wasm",
        "prerequisites": {"module": "demo.wasm", "sha256": hashlib.sha256(module).hexdigest()},
    }
    data.update(fields)
    return data
