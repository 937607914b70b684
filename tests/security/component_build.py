"""Builds a test component from one Python file with componentize-py, once per machine.

A build takes 10-30 s, so the component is kept in `$TASKAPI_TEST_COMPONENTS` (default
`~/.cache/taskapi/test-components`) under the sha256 of everything staged, the .wit, the world and the
componentize-py version: later test runs reuse it. With `app_sources`, what scripts/build_components
stages for tutorialapp is staged too, so a planted variant can reuse tutorialapp's component module.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from environments.wasm.runs import CompileLimits

ROOT = Path(__file__).resolve().parents[2]
WIT = ROOT / "protos" / "taskapi.wit"
COMPONENTIZE = Path(sys.executable).parent / "componentize-py"


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "taskapi" / "test-components"
    return Path(os.environ.get("TASKAPI_TEST_COMPONENTS", default))


COMPILE_LIMITS = CompileLimits(time_s=300)
"""The tests' compile bound: a 20 MB component takes 10 s on two idle cores and over 60 s (the default
bound) on a loaded CI machine; the bound itself is tested with modules (test_wasm_limits.py)."""


def compile_cache_dir() -> Path:
    """A wasm compile cache kept between test runs: a component compiles once per machine (10-40 s)."""
    return cache_dir() / "compiled"


def staged_files(source: Path, app_sources: bool) -> dict[str, Path]:
    """Where each staged file goes (relative to the stage) and where it comes from."""
    files = {source.name: source}
    if app_sources:
        listed = subprocess.run(
            [str(ROOT / "scripts" / "build_components"), "--list-sources"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        for line in listed:
            origin, name = line.split("\t")
            files[name] = ROOT / origin  # a relative origin is in the repository, an absolute one stays
    return files


def build_component(source: Path, world: str, app_sources: bool = False) -> Path:
    """The component built from `source` (a module implementing `world`), from the cache when there."""
    version = subprocess.run(
        [str(COMPONENTIZE), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    files = staged_files(source, app_sources)
    parts = [WIT.read_bytes(), world.encode(), version.encode()]
    parts += [name.encode() + b"\0" + path.read_bytes() for name, path in sorted(files.items())]
    digest = hashlib.sha256(b"\0".join(parts)).hexdigest()
    target = cache_dir() / f"{source.stem}-{digest[:16]}.wasm"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="componentize-") as stage:
        for name, path in files.items():
            (Path(stage) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(stage) / name).write_bytes(path.read_bytes())
        env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
        output = Path(stage) / "out.wasm"
        command = [str(COMPONENTIZE), "-d", str(WIT), "-w", world, "componentize", source.stem]
        subprocess.run(
            [*command, "-p", stage, "-o", str(output)], cwd=stage, env=env, capture_output=True, check=True
        )
        os.replace(output, target)
    return target
