"""`taskapi run` copying a task's outputs: what the app left in its outputs dir is not trusted.

A docker app writes its outputs dir through a bind mount, so it can leave links and odd names there. Each
case: the copy is refused naming the output, nothing is written outside the destination, nothing outside the
outputs dir is read (a secret file's bytes appear nowhere), and a sound task's outputs still copy afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from protos import node_pb2 as npb
from runtime.cli_outputs import UnsafeOutput, collect_outputs

SECRET = b"secret-of-the-requestor-machine"

Plant = Callable[[Path, Path], str]
"""Makes a hostile entry in the outputs dir (given it and a secret file outside); returns its name."""


def link_to_secret(outputs: Path, secret: Path) -> str:
    (outputs / "result.json").symlink_to(secret)
    return "result.json"


def link_to_a_dir_outside(outputs: Path, secret: Path) -> str:
    (outputs / "frames").symlink_to(secret.parent)
    return f"frames/{secret.name}"


def climbing_name(outputs: Path, secret: Path) -> str:
    return f"../{secret.parent.name}/{secret.name}"


def absolute_name(outputs: Path, secret: Path) -> str:
    return str(secret)


def a_fifo(outputs: Path, secret: Path) -> str:
    os.mkfifo(outputs / "pipe")
    return "pipe"


def empty_name(outputs: Path, secret: Path) -> str:
    return ""


PLANTS = [link_to_secret, link_to_a_dir_outside, climbing_name, absolute_name, a_fifo, empty_name]


def status_of(outputs: Path, names: list[str]) -> npb.TaskStatus:
    return npb.TaskStatus(task_id="t", state="finished", outputs_dir=str(outputs), outputs=names)


@pytest.mark.parametrize("plant", PLANTS, ids=[plant.__name__ for plant in PLANTS])
def test_a_hostile_output_is_refused_and_nothing_leaks(plant: Plant, tmp_path: Path) -> None:
    outputs = tmp_path / "node" / "outputs"
    outputs.mkdir(parents=True)
    (outputs / "sound.txt").write_text("fine")
    secret = tmp_path / "private" / "key"
    secret.parent.mkdir()
    secret.write_bytes(SECRET)
    destination = tmp_path / "out"
    name = plant(outputs, secret)
    before = set(tmp_path.rglob("*"))
    with pytest.raises(UnsafeOutput) as refused:
        collect_outputs(status_of(outputs, ["sound.txt", name]), destination)

    assert repr(name) in str(refused.value)
    created = set(tmp_path.rglob("*")) - before
    assert created == set(), "the refused copy wrote something"
    copies = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink() and p != secret]
    assert all(SECRET not in p.read_bytes() for p in copies)
    # still healthy: a sound task copies
    assert collect_outputs(status_of(outputs, ["sound.txt"]), destination) == [destination / "sound.txt"]
    assert (destination / "sound.txt").read_text() == "fine"
