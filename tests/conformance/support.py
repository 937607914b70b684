"""Helpers of the conformance suite's tests: planted-bug apps as targets, and the planted wasm build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runtime.appmanager import load_descriptor
from runtime.conformance.target import Target, command_target
from wasm_apps import APPS_DIR

TESTS_DIR = Path(__file__).resolve().parents[1]
ROOT = TESTS_DIR.parent
PLANTED = Path(__file__).resolve().parent / "planted"
TUTORIAL_SCHEMA = load_descriptor(ROOT / "apps" / "tutorialapp" / "descriptor.json").parameters

CFLAGS = ["--target=wasm32-wasi", "-O2", "-std=c11", "-g0", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
LDFLAGS = ["-Wl,--strip-all", "-Wl,-z,stack-size=1048576", "-Wl,--stack-first", "-lm"]


def planted_target(name: str) -> Target:
    """A planted-bug Python app (served as `python -m conformance.planted.NAME`), tutorialapp's schema."""
    return command_target(
        name, [sys.executable, "-m", f"conformance.planted.{name}"], parameters=TUTORIAL_SCHEMA
    )


def build_stamped(out: Path) -> Path:
    """Compile the planted wasm app like scripts/build_wasm_apps compiles the shipped ones."""
    app = APPS_DIR / "tutorialapp"
    sources = [
        *sorted((APPS_DIR / "common").glob("*.c")),
        *sorted(path for path in app.glob("*.c") if path.name != "provider.c"),
        PLANTED / "wasm_stamped" / "provider.c",
    ]
    includes = [f"-I{APPS_DIR / 'common'}", f"-I{app}"]
    subprocess.run(["clang", *CFLAGS, *includes, "-o", str(out), *map(str, sources), *LDFLAGS], check=True)
    return out


# properties that a bug may also fail, legitimately: verify_anything accepts a claim of "no nonce" for
# tutorialapp's open-ended last range, so such a task ends with every range done and no answer
ALSO_CAUGHT = {"verify_anything": {"complete_task_has_result"}}
