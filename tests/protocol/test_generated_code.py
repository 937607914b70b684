"""The committed protos/*_pb2.py, *_pb2.pyi and *_grpc.py are what scripts/gen_protos makes today.

The script runs on a copy of scripts/ and protos/*.proto in a temporary directory, with this
repository's venv, and every file it generates must equal the committed one byte for byte.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_grpc.py")


def generated_names(proto: Path) -> list[str]:
    return [proto.stem + suffix for suffix in GENERATED_SUFFIXES]


def test_generated_code_is_current(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "gen_protos", tmp_path / "scripts" / "gen_protos")
    (tmp_path / "protos").mkdir()
    protos = sorted((ROOT / "protos").glob("*.proto"))
    assert protos, "no .proto files under protos/"
    for proto in protos:
        shutil.copy2(proto, tmp_path / "protos" / proto.name)

    venv = Path(sys.executable).parent.parent
    result = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "gen_protos")],
        env={**os.environ, "VENV": str(venv)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"scripts/gen_protos failed:\n{result.stdout}\n{result.stderr}"

    stale = []
    for proto in protos:
        for name in generated_names(proto):
            fresh, committed = tmp_path / "protos" / name, ROOT / "protos" / name
            assert fresh.is_file(), f"scripts/gen_protos made no protos/{name}"
            if not committed.is_file() or committed.read_bytes() != fresh.read_bytes():
                stale.append(f"protos/{name}")
    assert not stale, f"stale generated code (run scripts/gen_protos and commit): {stale}"


def test_every_generated_file_has_its_proto() -> None:
    protos = {proto.stem for proto in (ROOT / "protos").glob("*.proto")}
    orphans = [
        path.name
        for suffix in GENERATED_SUFFIXES
        for path in (ROOT / "protos").glob(f"*{suffix}")
        if path.name.removesuffix(suffix) not in protos
    ]
    assert not orphans, f"generated files without a .proto: {orphans}"
