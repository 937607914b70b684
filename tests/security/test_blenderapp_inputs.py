"""Hostile scene files for blenderapp: the paths a requestor names for a scene's own files (textures,
libraries) are placed on a provider, and the task inputs a requestor's app shares with providers.

A provider's Compute takes `scene_path` and `files` (resource name -> path next to the scene) from a
requestor it does not trust: every path that could leave the scene's folder, or two files given one place,
is refused with InvalidArgument naming it, before anything renders and with nothing written outside the
subtask's dir. On the requestor, a link in `task_inputs/` is refused, never followed into subtask_inputs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from apps.blenderapp.provider import BlenderProvider
from apps.blenderapp.provider import _job as subtask_job
from apps.blenderapp.requestor import BlenderRequestor
from apps.sdk import InvalidArgument, ProviderTaskDir, RequestorTaskDir

HONEST = {
    "scene": "scene.blend",
    "frame": 1,
    "resolution": [64, 48],
    "samples": 1,
    "seed": 0,
    "device": "cpu",
    "denoise": False,
    "box": [0, 0, 64, 48],
    "output": "part.png",
    "scene_path": "my.blend",
    "files": {"file0001": "tex.png"},
}


def provider_dir(root: Path) -> ProviderTaskDir:
    """A provider's task dir with the scene and one texture delivered."""
    task_dir = ProviderTaskDir(root / "task")
    task_dir.prepare()
    (task_dir.subtask_inputs / "scene.blend").write_bytes(b"BLENDER")
    (task_dir.subtask_inputs / "file0001").write_bytes(b"PNG")
    (task_dir.subtask_inputs / "file0002").write_bytes(b"PNG2")
    return task_dir


def files_outside(root: Path, task_dir: ProviderTaskDir) -> list[Path]:
    """Every file under `root` that is not in the task dir (nothing should be)."""
    return [path for path in root.rglob("*") if path.is_file() and task_dir.root not in path.parents]


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({"files": {"file0001": "../tex.png"}}, "scene file path '../tex.png': the path leaves its folder"),
        ({"files": {"file0001": "../../../../escaped"}}, "the path leaves its folder"),
        ({"files": {"file0001": "textures/../../x.png"}}, "the path leaves its folder"),
        ({"files": {"file0001": "/etc/passwd"}}, "scene file path '/etc/passwd': the path leaves its folder"),
        ({"files": {"file0001": ""}}, "names the folder itself"),
        ({"files": {"file0001": "."}}, "names the folder itself"),
        ({"files": {"file0001": 7}}, "bad path 7 for scene file file0001"),
        ({"files": {"../file0001": "tex.png"}}, "invalid scene file resource '../file0001'"),
        ({"files": {"/etc/passwd": "tex.png"}}, "invalid scene file resource '/etc/passwd'"),
        ({"files": ["file0001"]}, "bad files"),
        ({"files": {"file0001": "my.blend"}}, "two scene files are given the place my.blend"),
        ({"files": {"file0001": "t/a.png", "file0002": "t/a.png"}}, "given the place t/a.png"),
        ({"files": {"file0001": "t", "file0002": "t/a.png"}}, "given the place t/a.png"),
        ({"files": {"file0009": "tex.png"}}, "scene file file0009 \\(tex.png\\) was not delivered"),
        ({"scene_path": "../my.blend"}, "scene file path '../my.blend': the path leaves its folder"),
        ({"scene_path": "/tmp/my.blend"}, "the path leaves its folder"),
        ({"scene_path": "my.py"}, "scene path my.py does not end in .blend"),
        ({"output": "../part.png"}, "invalid output name '../part.png'"),
    ],
)
def test_a_hostile_scene_file_path_is_refused_before_rendering(
    tmp_path: Path, changes: dict[str, object], refusal: str
) -> None:
    task_dir = provider_dir(tmp_path)
    provider = BlenderProvider()
    with pytest.raises(InvalidArgument, match=refusal):
        asyncio.run(provider.compute(task_dir, "s1", {**HONEST, **changes}))
    assert files_outside(tmp_path, task_dir) == []
    assert not (tmp_path / "tex.png").exists() and not (tmp_path / "escaped").exists()
    # The handler is still usable: an honest subtask's scene is placed (its render needs Blender, so the
    # placement is checked through the function the handler calls first).
    job = subtask_job(task_dir, "s2", HONEST)
    assert job.scene.read_bytes() == b"BLENDER"
    assert (job.scene.parent / "tex.png").read_bytes() == b"PNG"


@pytest.mark.parametrize("link_target", ["/etc/passwd", "../../outside.png", "scene.blend"])
def test_a_link_in_task_inputs_is_refused_not_shared(tmp_path: Path, link_target: str) -> None:
    (tmp_path / "outside.png").write_bytes(b"SECRET")
    task_dir = RequestorTaskDir(tmp_path / "work" / "t1")
    task_dir.prepare()
    (task_dir.task_inputs / "scene.blend").write_bytes(b"BLENDER")
    os.symlink(link_target, task_dir.task_inputs / "tex.png")
    with pytest.raises(InvalidArgument, match=r"task input refused tex.png: .*symbolic link"):
        asyncio.run(BlenderRequestor().create_task(task_dir, 8, {"scene": "scene.blend"}))
    shared = [path.read_bytes() for path in task_dir.subtask_inputs.iterdir()]
    assert b"SECRET" not in shared and not any(b"root:" in data for data in shared)
