"""The render worker: `python3 blender_job.py MARKER`, a process that imports Blender as a Python module
(`bpy`, Blender 4.5 LTS) once and stays loaded. Each line of stdin names a job file; each job starts from the
factory settings, as a fresh Blender would, and ends with a line `MARKER {"status": "ok", "device": ...}` or
`MARKER {"status": "error: <what>"}` after Blender's own log lines (render.py chooses the marker). The
worker exits when stdin closes (its app server went away).

The job file says: scene (a .py scene script with a `build()` function, or a .blend, opened without running
its embedded scripts), frame, resolution, samples, seed, threads, device, denoise, and the pixel boxes to
render (left, top, right, bottom; top-down rows, right/bottom exclusive), each with the PNG to write
(several boxes share one scene build). Adaptive sampling off and a fixed seed: the same pixel gets the same
value whichever box it is rendered in, which is what verification relies on.

Device: "cpu" renders on the CPU; "gpu" on OptiX if Cycles sees an OptiX device, else CUDA, and fails with
`GPU requested but Cycles sees no CUDA/OptiX device` when it sees neither (never falls back to the CPU);
"auto" takes the GPU when there is one and the CPU otherwise. Denoising (OpenImageDenoise) looks at a
pixel's neighbours, so a denoised box is rendered with `DENOISE_MARGIN` pixels more on every side (inside
the frame) and cut back: a pixel then sees the same neighbours in a part as in a whole frame.
"""

import json
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

import bpy  # type: ignore[import-not-found]
from PIL import Image

EPSILON = 1e-4  # border fractions a hair past the pixel edge, so Blender's rounding lands on the edge
GPU_BACKENDS = ("OPTIX", "CUDA")
NO_GPU = "GPU requested but Cycles sees no CUDA/OptiX device"
DENOISE_MARGIN = 16
GPU_TILE_SIZE = 2048  # a GPU wants big tiles (many paths in flight); the whole of a part is one tile


class NoGpu(RuntimeError):
    """The job asked for a GPU and Cycles sees none."""


_gpus: dict[str, list[str]] | None = None


def gpus_seen() -> dict[str, list[str]]:
    """Cycles' GPU devices by backend (OPTIX, CUDA), looked up once per worker: the devices a container
    sees do not change while it runs."""
    global _gpus
    if _gpus is None:
        preferences = bpy.context.preferences.addons["cycles"].preferences
        _gpus = {}
        for backend in GPU_BACKENDS:
            devices = preferences.get_devices_for_type(backend)
            _gpus[backend] = [device.name for device in devices if device.type == backend]
    return _gpus


def choose_device(scene: Any, requested: str) -> str:
    """Set `scene` to render on the device `requested` asks for; the device used, in words."""
    if requested != "cpu":
        seen = gpus_seen()
        backend = next((backend for backend in GPU_BACKENDS if seen[backend]), None)
        if backend is not None:
            preferences = bpy.context.preferences.addons["cycles"].preferences
            preferences.compute_device_type = backend
            for device in preferences.get_devices_for_type(backend):
                device.use = device.type == backend
            scene.cycles.device = "GPU"
            scene.cycles.tile_size = GPU_TILE_SIZE
            return f"{backend} ({', '.join(seen[backend])})"
        if requested == "gpu":
            raise NoGpu(NO_GPU)
    scene.cycles.device = "CPU"
    return "CPU"


def open_scene(scene_path: str) -> None:
    if scene_path.endswith(".blend"):
        bpy.ops.wm.open_mainfile(filepath=scene_path, load_ui=False, use_scripts=False)
    else:
        runpy.run_path(scene_path)["build"]()


def render_job(job_path: str) -> str:
    """Render the job in `job_path`; the device it used."""
    with open(job_path) as handle:
        job = json.load(handle)
    open_scene(job["scene"])
    scene = bpy.context.scene
    render = scene.render
    render.engine = "CYCLES"
    device = choose_device(scene, job["device"])
    scene.cycles.samples = int(job["samples"])
    scene.cycles.seed = int(job["seed"])
    scene.cycles.use_animated_seed = False
    scene.cycles.use_adaptive_sampling = False
    denoise = bool(job["denoise"])
    scene.cycles.use_denoising = denoise
    if denoise:
        scene.cycles.denoiser = "OPENIMAGEDENOISE"
        scene.cycles.denoising_input_passes = "RGB_ALBEDO_NORMAL"
        scene.cycles.denoising_prefilter = "ACCURATE"
    for layer in scene.view_layers:
        layer.cycles.denoising_store_passes = False
    scene.frame_set(int(job["frame"]))
    width, height = (int(side) for side in job["resolution"])
    render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
    render.threads_mode = "FIXED"
    render.threads = max(1, int(job["threads"]))
    render.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGB"
    render.image_settings.color_depth = "8"
    render.image_settings.compression = 15
    render.use_border = True
    render.use_crop_to_border = True
    margin = DENOISE_MARGIN if denoise else 0
    for (left, top, right, bottom), output in job["regions"]:
        outer = (
            max(0, left - margin),
            max(0, top - margin),
            min(width, right + margin),
            min(height, bottom + margin),
        )
        render.border_min_x = (outer[0] + EPSILON) / width
        render.border_max_x = (outer[2] + EPSILON) / width
        render.border_min_y = (height - outer[3] + EPSILON) / height
        render.border_max_y = (height - outer[1] + EPSILON) / height
        render.filepath = output
        bpy.ops.render.render(write_still=True)
        if outer != (left, top, right, bottom):
            cut_to(Path(output), (left - outer[0], top - outer[1], right - outer[0], bottom - outer[1]))
    return device


def cut_to(path: Path, box: tuple[int, int, int, int]) -> None:
    """Crop the PNG at `path` to `box` (left, top, right, bottom in its own pixels), in place."""
    with Image.open(path) as image:
        inner = image.crop(box)
    inner.save(path, format="PNG")


def serve(marker: str) -> None:
    """Render the job file named on each line of stdin until stdin closes; `marker` starts each answer."""
    for line in sys.stdin:
        answer: dict[str, str]
        try:
            bpy.ops.wm.read_factory_settings(use_empty=False)
            answer = {"status": "ok", "device": render_job(line.strip())}
        except Exception as exc:  # any failure is this job's, reported to the caller; the next may work
            if not isinstance(exc, NoGpu):
                traceback.print_exc(file=sys.stdout)
            answer = {"status": "error: " + " ".join(f"{type(exc).__name__}: {exc}".split())}
        print(f"{marker} {json.dumps(answer)}", flush=True)


if __name__ == "__main__":
    serve(sys.argv[1])
