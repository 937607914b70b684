"""The committed wasm modules and descriptors match their C sources (the build is reproducible)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from wasm_apps import APPS_DIR, app_names, descriptor, module_path

REPO = APPS_DIR.parent
BUILD = REPO / "scripts" / "build_wasm_apps"
WASI_HEADERS = Path("/usr/include/wasm32-wasi/stdio.h")


def toolchain_present() -> bool:
    return all(shutil.which(tool) for tool in ("clang", "wasm-ld")) and WASI_HEADERS.is_file()


def test_both_apps_are_shipped() -> None:
    assert app_names() == ["mandelbrot", "tutorialapp"]


@pytest.mark.parametrize("name", ["mandelbrot", "tutorialapp"])
def test_descriptor_names_the_committed_module_and_its_sha256(name: str) -> None:
    info = descriptor(name)
    assert (info["name"], info["environment"]) == (name, "wasm")
    assert info["prerequisites"]["module"] == f"{name}.wasm"
    module = module_path(name)
    assert hashlib.sha256(module.read_bytes()).hexdigest() == info["prerequisites"]["sha256"]
    assert module.read_bytes()[:4] == b"\0asm"


def test_committed_artifacts_match_their_sources() -> None:
    if not toolchain_present():
        pytest.fail(
            "the wasm toolchain (clang lld wasi-libc libclang-rt-dev-wasm32) is missing: run "
            "scripts/build_wasm_apps, which installs it when run as root, then re-run the tests"
        )
    check = subprocess.run([str(BUILD), "--check"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
