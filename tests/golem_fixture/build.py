"""Builds the Golem-style fixture app's own stack: a Python 3.7 venv with Golem's SDK-era libraries
(grpclib 0.2.4 on h2 3.2, protobuf 3.20), code generated from `protos/taskapi.proto` by that era's
protoc, and a docker image carrying the same interpreter and packages.

`python -m tests.golem_fixture.build [--docker]` (or `scripts/setup_golem_fixture`) builds what is missing;
the pytest fixtures call `venv_python()` / `image()` and skip with this command when it was never run.
Everything lands under `build/golem_fixture/` (ignored by git); PyPI is the only source.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP_DIR = Path(__file__).resolve().parent / "app"
BUILD = REPO / "build" / "golem_fixture"
VENV = BUILD / "venv"
PACKAGES = ("grpclib==0.2.4", "h2==3.2.0", "protobuf==3.20.3", "grpcio-tools==1.48.2")
IMAGE = "taskapi-test/golem-fixture"
IMAGE_TAG = "0.24"
PYTHON_IN_IMAGE = "/opt/python3.7"
SETUP_COMMAND = "scripts/setup_golem_fixture --docker"


def pyenv_python37() -> Path | None:
    """pyenv's Python 3.7 interpreter, if this machine has one."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted(glob.glob(str(root / "versions" / "3.7.*" / "bin" / "python3.7")))
    return Path(found[-1]) if found else None


def _stamp(with_app: bool = False) -> str:
    """What the venv was built from (the proto and the pinned packages); `with_app`: what the image was
    built from (those and the app's sources; the venv reaches the sources through a .pth file)."""
    digest = hashlib.sha256()
    for path in [REPO / "protos" / "taskapi.proto", *(sorted(APP_DIR.rglob("*.py")) if with_app else [])]:
        digest.update(path.read_bytes())
    digest.update(" ".join(PACKAGES).encode())
    return digest.hexdigest()[:16]


def _site_packages() -> Path:
    return next((VENV / "lib").glob("python3.7/site-packages"))


def venv_python() -> Path | None:
    """The fixture venv's interpreter once it is built and current; else None."""
    stamp = BUILD / "venv.stamp"
    python = VENV / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text() == _stamp():
        return python
    return None


def build_venv() -> Path:
    """Create the venv, install the pinned packages, generate the task-api code, link the app in."""
    python37 = pyenv_python37()
    if python37 is None:
        raise SystemExit("no Python 3.7 under pyenv (~/.pyenv/versions/3.7.*): `pyenv install 3.7`")
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([str(python37), "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *PACKAGES], check=True)
    site = _site_packages()
    env = {**os.environ, "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}"}
    protoc = [str(VENV / "bin" / "python"), "-m", "grpc_tools.protoc", f"-I{REPO / 'protos'}"]
    outputs = [f"--python_out={site}", f"--python_grpc_out={site}", str(REPO / "protos" / "taskapi.proto")]
    subprocess.run([*protoc, *outputs], check=True, env=env)
    (site / "golemfixture.pth").write_text(f"{APP_DIR}\n")
    (BUILD / "venv.stamp").write_text(_stamp())
    return VENV / "bin" / "python"


def image() -> str | None:
    """`repository:tag` of the fixture's image once built from the current venv; else None."""
    reference = f"{IMAGE}:{IMAGE_TAG}"
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", '{{index .Config.Labels "stamp"}}', reference],
        capture_output=True,
        text=True,
    )
    return reference if result.returncode == 0 and result.stdout.strip() == _stamp(with_app=True) else None


def build_image(base: str) -> str:
    """An image FROM `base` (a bookworm root with python3's shared libraries) with Python 3.7 at
    /opt/python3.7, the venv's packages and the app; entrypoint `python3.7 -m golemfixture`."""
    python37 = pyenv_python37()
    assert python37 is not None
    with tempfile.TemporaryDirectory() as staging:
        context = Path(staging)
        shutil.copytree(
            python37.parents[1], context / "python3.7", symlinks=True, ignore=shutil.ignore_patterns("test")
        )
        unneeded = shutil.ignore_patterns("grpc_tools", "grpc", "grpcio*", "pip", "setuptools", "__pycache__")
        shutil.copytree(_site_packages(), context / "site-packages", symlinks=True, ignore=unneeded)
        (context / "site-packages" / "golemfixture.pth").unlink()
        shutil.copytree(APP_DIR / "golemfixture", context / "site-packages" / "golemfixture")
        (context / "Dockerfile").write_text(
            f"FROM {base}\n"
            f"COPY python3.7/ {PYTHON_IN_IMAGE}/\n"
            f"COPY site-packages/ {PYTHON_IN_IMAGE}/lib/python3.7/site-packages/\n"
            f"ENV LD_LIBRARY_PATH={PYTHON_IN_IMAGE}/lib\n"
            f"LABEL stamp={_stamp(with_app=True)}\n"
            f'ENTRYPOINT ["{PYTHON_IN_IMAGE}/bin/python3.7", "-m", "golemfixture"]\n'
        )
        reference = f"{IMAGE}:{IMAGE_TAG}"
        subprocess.run(["docker", "build", "-q", "-t", reference, str(context)], check=True)
    return reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docker", action="store_true", help="also build the docker image")
    args = parser.parse_args()
    if venv_python() is None:
        print(f"building the fixture venv under {VENV}", file=sys.stderr)
        build_venv()
    if args.docker and image() is None:
        sys.path.insert(0, str(REPO))
        from environments.docker.images import full_name

        print(f"building {IMAGE}:{IMAGE_TAG}", file=sys.stderr)
        build_image(full_name("base"))


if __name__ == "__main__":
    main()
