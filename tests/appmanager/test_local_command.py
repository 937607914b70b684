"""A `local` build on its own stack: `prerequisites.command` (resolved against the descriptor's folder),
`prerequisites.work_dir` (a private mount namespace, root only) and `provider_server`; the command is the
local environment's (`LocalEnvironment.app_command`), the node's refusal names the build (`serving_of`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from environments.app_serving import AppPayload
from environments.base import PrerequisitesRefused
from environments.local import LocalEnvironment
from runtime.appmanager import App, AppNotAvailable, DescriptorError, LocalDescriptor, load_descriptor
from runtime.serving import serving_of

from .descriptors import WriteDescriptor


def local(**prerequisites: Any) -> dict[str, Any]:
    return {
        "name": "golemish",
        "version": "1.0.0",
        "environment": "local",
        "prerequisites": {"module": "app", **prerequisites},
    }


def local_command(descriptor: LocalDescriptor, path: Path) -> list[str]:
    return LocalEnvironment.app_command(AppPayload(descriptor.prerequisites.model_dump(), path.parent))


def loaded(write_descriptor: WriteDescriptor, data: dict[str, Any]) -> tuple[LocalDescriptor, Path]:
    path = write_descriptor(data, module=None)
    descriptor = load_descriptor(path)
    assert isinstance(descriptor, LocalDescriptor)
    return descriptor, path


@pytest.mark.parametrize(
    ("prerequisites", "field", "says"),
    [
        ({"command": []}, "prerequisites.command", "non-empty list"),
        ({"command": [""]}, "prerequisites.command", "non-empty list"),
        ({"command": ["python\x00", "-m"]}, "prerequisites.command", "non-empty list"),
        ({"work_dir": "golem/work"}, "prerequisites.work_dir", "absolute path"),
        ({"work_dir": "/"}, "prerequisites.work_dir", "absolute path"),
        ({"work_dir": "/golem/../etc"}, "prerequisites.work_dir", "absolute path"),
    ],
    ids=["empty", "empty program", "NUL", "relative work dir", "root", "dot-dot"],
)
def test_bad_command_or_work_dir_is_refused_naming_the_field(
    write_descriptor: WriteDescriptor, prerequisites: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(DescriptorError) as caught:
        load_descriptor(write_descriptor(local(**prerequisites), module=None))
    problems = {problem.field: problem.message for problem in caught.value.problems}
    assert says in problems[field]


def test_provider_server_is_per_call_unless_declared_reusable(write_descriptor: WriteDescriptor) -> None:
    assert loaded(write_descriptor, local())[0].provider_server == "per_call"
    reusable = {**local(), "provider_server": "reusable"}
    assert loaded(write_descriptor, reusable)[0].provider_server == "reusable"
    with pytest.raises(DescriptorError):
        load_descriptor(write_descriptor({**local(), "provider_server": "sometimes"}, module=None))


def test_a_relative_program_is_found_beside_the_descriptor(write_descriptor: WriteDescriptor) -> None:
    descriptor, path = loaded(write_descriptor, local(command=["venv/bin/python", "-m", "app"]))
    assert local_command(descriptor, path) == [str(path.parent / "venv/bin/python"), "-m", "app"]
    descriptor, path = loaded(write_descriptor, local(command=["python3.7", "-m", "app"]))
    assert local_command(descriptor, path) == ["python3.7", "-m", "app"]  # looked up on PATH
    descriptor, path = loaded(write_descriptor, local())
    assert local_command(descriptor, path) == [sys.executable, "-m", "app"]


def test_a_work_dir_outside_root_is_refused_with_the_reason(
    write_descriptor: WriteDescriptor, monkeypatch: pytest.MonkeyPatch
) -> None:
    descriptor, path = loaded(write_descriptor, local(work_dir="/golem/work"))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(PrerequisitesRefused) as refused:
        local_command(descriptor, path)
    assert "needs its work dir at /golem/work" in str(refused.value) and "needs root" in str(refused.value)
    app = App("0123456789abcdef", descriptor, path, builtin=False, enabled=True)
    with pytest.raises(AppNotAvailable) as caught:
        serving_of(app)
    assert str(caught.value).startswith(app.label()) and "needs root" in str(caught.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="a private mount namespace needs root")
def test_the_app_sees_its_work_dir_at_the_named_path_and_nobody_else_does(
    write_descriptor: WriteDescriptor, tmp_path: Path
) -> None:
    probe = "import pathlib; print(sorted(p.name for p in pathlib.Path('/golem/work').iterdir()))"
    descriptor, path = loaded(
        write_descriptor, local(command=[sys.executable, "-c", probe], work_dir="/golem/work")
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.txt").write_text("x")
    command = local_command(descriptor, path)
    seen = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=30)
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.strip() == "['mine.txt']"
    assert not (Path("/golem/work") / "mine.txt").exists()  # the bind is private to the app's namespace
