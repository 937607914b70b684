"""Builds a test component from one Python file with componentize-py, once per machine.

A build takes 10-30 s, so the component is kept in `$TASKAPI_TEST_COMPONENTS` (default
`~/.cache/taskapi/test-components`) under the sha256 of its source, the .wit, the world and the
componentize-py version: later test runs reuse it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIT = ROOT / "protos" / "taskapi.wit"
COMPONENTIZE = Path(sys.executable).parent / "componentize-py"


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "taskapi" / "test-components"
    return Path(os.environ.get("TASKAPI_TEST_COMPONENTS", default))


def compile_cache_dir() -> Path:
    """A wasm compile cache kept between test runs: a component compiles once per machine (10-40 s)."""
    return cache_dir() / "compiled"


def build_component(source: Path, world: str) -> Path:
    """The component built from `source` (a module implementing `world`), from the cache when there."""
    version = subprocess.run(
        [str(COMPONENTIZE), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    digest = hashlib.sha256(
        b"\0".join([source.read_bytes(), WIT.read_bytes(), world.encode(), version.encode()])
    ).hexdigest()
    target = cache_dir() / f"{source.stem}-{digest[:16]}.wasm"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="componentize-") as stage:
        shutil.copy(source, Path(stage) / source.name)
        env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
        subprocess.run(
            [
                str(COMPONENTIZE),
                "-d",
                str(WIT),
                "-w",
                world,
                "componentize",
                source.stem,
                "-p",
                stage,
                "-o",
                str(Path(stage) / "out.wasm"),
            ],
            cwd=stage,
            env=env,
            capture_output=True,
            check=True,
        )
        os.replace(Path(stage) / "out.wasm", target)
    return target
