"""A scene saved by Blender 4.5 itself (made here with bpy in the app image: an image texture packed into
the .blend, a procedural texture, several materials, a camera moving between keyframes) renders split into
parts and whole to the same picture, and its frames differ as the camera moves."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from apps.blenderapp.imaging import load_png, psnr, ssim
from apps.sdk.handlers import VerifyResult
from environments.docker import DockerCpuEnvironment
from environments.docker.images import release_name
from environments.status import RuntimeStatus

from .conftest import require_engine_and_images
from .drive import run_task
from .support import python, run_sync

MAKE_SCENE = """
import bpy, numpy

bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene

def material(name, color, roughness=0.5, metallic=0.0):
    made = bpy.data.materials.new(name)
    made.use_nodes = True
    shader = made.node_tree.nodes["Principled BSDF"]
    shader.inputs["Base Color"].default_value = (*color, 1.0)
    shader.inputs["Roughness"].default_value = roughness
    shader.inputs["Metallic"].default_value = metallic
    return made, shader

# An image texture, drawn here and packed into the .blend.
size = 64
y, x = numpy.mgrid[0:size, 0:size]
rgba = numpy.stack([(x // 8 + y // 8) % 2, x / size, y / size, numpy.ones_like(x)], axis=2)
image = bpy.data.images.new("tiles", size, size)
image.pixels.foreach_set(rgba.astype(numpy.float32).ravel())
image.pack()
floor, floor_shader = material("floor", (1, 1, 1))
texture = floor.node_tree.nodes.new("ShaderNodeTexImage")
texture.image = image
texture.interpolation = "Closest"
floor.node_tree.links.new(texture.outputs["Color"], floor_shader.inputs["Base Color"])

# A procedural texture.
marble, marble_shader = material("marble", (1, 1, 1), roughness=0.2)
noise = marble.node_tree.nodes.new("ShaderNodeTexNoise")
noise.inputs["Scale"].default_value = 6.0
marble.node_tree.links.new(noise.outputs["Color"], marble_shader.inputs["Base Color"])

gold, _ = material("gold", (0.9, 0.6, 0.2), roughness=0.15, metallic=1.0)
paint, _ = material("paint", (0.1, 0.5, 0.2), roughness=0.6)

bpy.ops.mesh.primitive_plane_add(size=12)
bpy.context.object.data.materials.append(floor)
for location, made in (((-1.6, 0, 1), marble), ((0.4, 1.2, 1), gold)):
    bpy.ops.mesh.primitive_uv_sphere_add(radius=1.0, location=location, segments=32, ring_count=16)
    bpy.ops.object.shade_smooth()
    bpy.context.object.data.materials.append(made)
bpy.ops.mesh.primitive_cube_add(size=1.4, location=(1.8, -1.2, 0.7), rotation=(0, 0, 0.5))
bpy.context.object.data.materials.append(paint)

bpy.ops.object.light_add(type="AREA", location=(-2, -3, 5))
bpy.context.object.data.energy = 800.0
bpy.context.object.data.size = 3.0
world = bpy.data.worlds.new("sky")
world.use_nodes = True
world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.4, 0.5, 0.7, 1.0)
scene.world = world

# A camera moving (location and aim) between keyframes at frames 1 and 9.
bpy.ops.object.camera_add(location=(-5, -7, 3.5))
camera = bpy.context.object
scene.camera = camera
aim = camera.constraints.new("TRACK_TO")
bpy.ops.object.empty_add(location=(0, 0, 0.8))
aim.target = bpy.context.object
camera.keyframe_insert("location", frame=1)
camera.location = (5, -7, 2.5)
camera.keyframe_insert("location", frame=9)
scene.frame_start, scene.frame_end = 1, 9

bpy.ops.wm.save_as_mainfile(filepath="/golem/work/moving.blend")
print("saved", bpy.app.version_string)
"""

PARAMS = {"scene": "moving.blend", "frame_start": 5, "frames": 1, "resolution": "128x96", "samples": 8}


@pytest.fixture(scope="module")
def blender_image() -> str:
    require_engine_and_images("blenderapp")
    return release_name("blenderapp")


def make_scene(env: DockerCpuEnvironment, image: str, work: Path) -> Path:
    """moving.blend, saved by the image's Blender into `work`."""
    runtime, status, logs = run_sync(env, python(image, MAKE_SCENE, work_dir=work))
    assert status is RuntimeStatus.STOPPED and runtime.exit_code == 0, logs
    assert "saved 4.5" in logs, logs
    return work / "moving.blend"


def render(env: DockerCpuEnvironment, image: str, scene: Path, work: Path, params: dict[str, object]) -> Path:
    """Render `params` of the scene as a task whose inputs hold it; the frame's PNG."""
    task_inputs = work / "requestor" / "task" / "task_inputs"
    task_inputs.mkdir(parents=True)
    shutil.copyfile(scene, task_inputs / scene.name)
    run = asyncio.run(run_task(env, image, work, "task", params))
    assert all(verdict is VerifyResult.SUCCESS for verdict, _ in run.verdicts.values()), run.verdicts
    frame = int(str(params["frame_start"]))
    return run.outputs / f"frame{frame:04d}.png"


def test_a_scene_saved_by_blender_4_5_renders_split_and_whole_alike(
    docker_env: DockerCpuEnvironment, blender_image: str, tmp_path: Path
) -> None:
    scene = make_scene(docker_env, blender_image, tmp_path / "make")
    split = load_png(render(docker_env, blender_image, scene, tmp_path / "split", {**PARAMS, "parts": 4}))
    whole = load_png(render(docker_env, blender_image, scene, tmp_path / "whole", {**PARAMS, "parts": 1}))
    assert split.shape == (96, 128, 3) and split.std() > 10
    assert ssim(split, whole) >= 0.99 and psnr(split, whole) >= 35
    # The camera moves: another frame of the same scene is another picture.
    other = load_png(
        render(docker_env, blender_image, scene, tmp_path / "other", {**PARAMS, "parts": 1, "frame_start": 1})
    )
    assert ssim(other, whole) < 0.9
