"""A user's own .blend through the command line: `taskapi run blenderapp --input my.blend --set
scene=my.blend` renders it split into parts, and the merged frame matches a whole render of the same scene.

The scene is made by the app image's Blender (see test_blenderapp_scenes: an image texture packed into the
.blend, a procedural texture, a moving camera).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from apps.blenderapp.imaging import load_png, psnr, ssim
from environments.docker import DockerCpuEnvironment

from .test_blenderapp_scenes import PARAMS, blender_image, make_scene, render

TASKAPI = str(Path(sys.executable).with_name("taskapi"))

__all__ = ["blender_image"]  # the fixture, used by name below


def test_a_users_blend_given_with_input_renders_split_like_whole(
    docker_env: DockerCpuEnvironment, blender_image: str, tmp_path: Path
) -> None:
    scene = make_scene(docker_env, blender_image, tmp_path / "make")
    settings = [f"--set={key}={value}" for key, value in {**PARAMS, "parts": 3}.items()]
    output = ["--output", str(tmp_path / "out"), "--json"]
    run = subprocess.run(
        [TASKAPI, "run", "blenderapp", "--env", "docker_cpu", "--input", str(scene), *settings, *output],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["subtasks"]["accepted"] >= 3
    split = load_png(tmp_path / "out" / f"frame{PARAMS['frame_start']:04d}.png")
    whole = load_png(render(docker_env, blender_image, scene, tmp_path / "whole", {**PARAMS, "parts": 1}))
    assert split.shape == (96, 128, 3) and split.std() > 10
    assert ssim(split, whole) >= 0.99 and psnr(split, whole) >= 35
