"""gWASM apps written in C: sources, committed `.wasm` builds and their descriptors.

Each app lives in `wasm_apps/<name>/` with `<name>.wasm` (built by `scripts/build_wasm_apps`) and
`descriptor.json`; `wasm_apps/README.md` describes the layout and the descriptor format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

APPS_DIR = Path(__file__).resolve().parent
DESCRIPTOR_FILE = "descriptor.json"


def app_names() -> list[str]:
    """Names of the apps that have a descriptor, sorted."""
    return sorted(p.parent.name for p in APPS_DIR.glob(f"*/{DESCRIPTOR_FILE}"))


def descriptor(name: str) -> dict[str, Any]:
    """The parsed descriptor of app `name` (FileNotFoundError for an unknown app)."""
    data: dict[str, Any] = json.loads((APPS_DIR / name / DESCRIPTOR_FILE).read_text())
    return data


def module_path(name: str) -> Path:
    """Path of app `name`'s committed wasm module."""
    return APPS_DIR / name / str(descriptor(name)["prerequisites"]["module"])
