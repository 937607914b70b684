"""A user's .blend whose image textures are separate files, not packed into it: `taskapi run blenderapp
--input shot.blend --input tex.png --input textures/ --set scene=shot.blend` ships the textures with every
part to the providers, places them where the .blend's relative paths (`//tex.png`,
`//textures/stripes.png`) point, and the merged frame matches a whole render and shows both textures.

The scene is made by the app image's Blender: two emissive planes seen from above by an orthographic camera,
the left one showing a red/green checker from `//tex.png`, the right one blue/yellow stripes from
`//textures/stripes.png`; both images are saved as PNG files next to the .blend and not packed. Without
them, Blender renders a missing texture magenta: the test asserts the textured frame has none of it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from apps.blenderapp.imaging import Pixels, load_png, psnr, ssim
from environments.docker import DockerCpuEnvironment
from environments.status import RuntimeStatus

from .drive import TASKAPI
from .support import python, run_sync
from .test_blenderapp_scenes import blender_image

__all__ = ["blender_image"]  # the fixture, used by name below

MAKE_SCENE = """
import bpy, numpy, os

bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
os.makedirs("/golem/work/textures", exist_ok=True)
bpy.ops.wm.save_as_mainfile(filepath="/golem/work/shot.blend")  # relative paths below start from here

def texture_file(name, relative, rgb):
    size = 32
    image = bpy.data.images.new(name, size, size)
    pixels = numpy.concatenate([rgb(*numpy.mgrid[0:size, 0:size]), numpy.ones((size, size, 1))], axis=2)
    image.pixels.foreach_set(pixels.astype(numpy.float32).ravel())
    image.filepath_raw = "/golem/work/" + relative
    image.file_format = "PNG"
    image.save()
    image.filepath = "//" + relative
    assert image.packed_file is None
    return image

def checker(y, x):
    odd = ((x // 8 + y // 8) % 2)[..., None]
    return odd * [1.0, 0.0, 0.0] + (1 - odd) * [0.0, 1.0, 0.0]

def stripes(y, x):
    odd = ((x // 4) % 2)[..., None]
    return odd * [0.0, 0.0, 1.0] + (1 - odd) * [1.0, 1.0, 0.0]

planes = (("tex", "tex.png", checker, -1.1), ("stripes", "textures/stripes.png", stripes, 1.1))
for name, relative, rgb, x in planes:
    made = bpy.data.materials.new(name)
    made.use_nodes = True
    nodes, links = made.node_tree.nodes, made.node_tree.links
    nodes.clear()
    emission = nodes.new("ShaderNodeEmission")
    texture = nodes.new("ShaderNodeTexImage")
    texture.image = texture_file(name, relative, rgb)
    texture.interpolation = "Closest"
    output = nodes.new("ShaderNodeOutputMaterial")
    links.new(texture.outputs["Color"], emission.inputs["Color"])
    links.new(emission.outputs["Emission"], output.inputs["Surface"])
    bpy.ops.mesh.primitive_plane_add(size=2, location=(x, 0, 0))
    bpy.context.object.data.materials.append(made)

bpy.ops.object.camera_add(location=(0, 0, 5))
scene.camera = bpy.context.object
scene.camera.data.type = "ORTHO"
scene.camera.data.ortho_scale = 4.6
world = bpy.data.worlds.new("dark")
scene.world = world
bpy.ops.wm.save_mainfile()
print("saved", sorted((image.filepath, image.packed_file) for image in bpy.data.images))
"""

PARAMS = {"scene": "shot.blend", "resolution": "128x64", "samples": 4}


def make_scene(env: DockerCpuEnvironment, image: str, work: Path) -> Path:
    """shot.blend, tex.png and textures/stripes.png, saved by the image's Blender into `work`."""
    runtime, status, logs = run_sync(env, python(image, MAKE_SCENE, work_dir=work))
    assert status is RuntimeStatus.STOPPED and runtime.exit_code == 0, logs
    assert "saved [('//tex.png', None), ('//textures/stripes.png', None)]" in logs, logs
    return work


def taskapi_run(inputs: list[Path], parts: int, output: Path) -> tuple[Pixels, dict[str, object]]:
    """`taskapi run blenderapp --env docker_cpu` of the scene with `inputs`: the frame and the summary."""
    settings = [f"--set={key}={value}" for key, value in {**PARAMS, "parts": parts}.items()]
    given = [argument for path in inputs for argument in ("--input", str(path))]
    run = subprocess.run(
        [
            TASKAPI,
            "run",
            "blenderapp",
            "--env",
            "docker_cpu",
            *given,
            *settings,
            "--output",
            str(output),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary: dict[str, object] = json.loads(run.stdout)
    return load_png(output / "frame0001.png"), summary


def magenta(frame: Pixels) -> float:
    """The share of pixels Blender paints for a missing texture."""
    red, green, blue = (frame[..., channel].astype(int) for channel in range(3))
    return float(((red > 200) & (blue > 200) & (green < 60)).mean())


def test_separate_texture_files_reach_the_providers_and_show_in_the_frame(
    docker_env: DockerCpuEnvironment, blender_image: str, tmp_path: Path
) -> None:
    made = make_scene(docker_env, blender_image, tmp_path / "make")
    inputs = [made / "shot.blend", made / "tex.png", made / "textures"]
    split, summary = taskapi_run(inputs, 3, tmp_path / "split")
    assert summary["subtasks"]["accepted"] >= 3  # type: ignore[index]
    assert summary["result_info"] == {"device": "CPU"}  # the device every part says rendered it
    whole, _ = taskapi_run(inputs, 1, tmp_path / "whole")
    assert ssim(split, whole) >= 0.99 and psnr(split, whole) >= 35
    assert magenta(split) == 0.0
    left, right = split[:, :60], split[:, 68:]
    # The checker (red and green squares) on the left plane, the stripes (blue and yellow) on the right.
    assert (left[..., 0] > 200).mean() > 0.2 and (left[..., 1] > 200).mean() > 0.2
    assert (right[..., 2] > 200).mean() > 0.2 and ((right[..., 0] > 200) & (right[..., 1] > 200)).mean() > 0.2
    # Without the texture files, the same scene renders magenta where they were.
    missing, _ = taskapi_run([made / "shot.blend"], 1, tmp_path / "missing")
    assert magenta(missing) > 0.5 and ssim(missing, split) < 0.5
