"""Runs inside Blender (`blender -b -noaudio --factory-startup --python blender_job.py -- MARKER`), which
stays loaded: each line of stdin names a job file; each job starts from the factory settings, as a fresh
Blender would, and ends with a line `MARKER ok` or `MARKER error: <what>` after Blender's own log lines
(render.py chooses the marker). Blender exits when stdin closes (its app server went away).

The job file says: scene (a .py scene script with a `build()` function, or a .blend), frame, resolution,
samples, seed, threads, and the pixel boxes to render (left, top, right, bottom; top-down rows, right/bottom
exclusive), each with the PNG to write (several boxes share one scene build). Cycles on the CPU,
denoising and adaptive sampling off, a fixed seed: the same pixel gets the same value whichever box it is
rendered in, which is what verification relies on.
"""

import json
import runpy
import sys
import traceback

import bpy  # type: ignore[import-not-found]

EPSILON = 1e-4  # border fractions a hair past the pixel edge, so Blender's rounding lands on the edge


def render_job(job_path: str) -> None:
    with open(job_path) as handle:
        job = json.load(handle)
    scene_path = job["scene"]
    if scene_path.endswith(".blend"):
        bpy.ops.wm.open_mainfile(filepath=scene_path, load_ui=False)
    else:
        runpy.run_path(scene_path)["build"]()
    scene = bpy.context.scene
    render = scene.render
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = int(job["samples"])
    scene.cycles.seed = int(job["seed"])
    scene.cycles.use_animated_seed = False
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    for layer in scene.view_layers:
        layer.cycles.denoising_store_passes = False
    scene.frame_set(int(job["frame"]))
    width, height = job["resolution"]
    render.resolution_x, render.resolution_y, render.resolution_percentage = int(width), int(height), 100
    render.threads_mode = "FIXED"
    render.threads = max(1, int(job.get("threads", 1)))
    render.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGB"
    render.image_settings.color_depth = "8"
    render.image_settings.compression = 15
    render.use_border = True
    render.use_crop_to_border = True
    for (left, top, right, bottom), output in job["regions"]:
        render.border_min_x = (left + EPSILON) / width
        render.border_max_x = (right + EPSILON) / width
        render.border_min_y = (height - bottom + EPSILON) / height
        render.border_max_y = (height - top + EPSILON) / height
        render.filepath = output
        bpy.ops.render.render(write_still=True)


def serve(marker: str) -> None:
    """Render the job file named on each line of stdin until stdin closes; `marker` starts each answer."""
    for line in sys.stdin:
        try:
            bpy.ops.wm.read_factory_settings(use_empty=False)
            render_job(line.strip())
            status = "ok"
        except Exception as exc:  # any failure is this job's, reported to the caller; the next may work
            traceback.print_exc(file=sys.stdout)
            status = "error: " + " ".join(f"{type(exc).__name__}: {exc}".split())
        print(f"{marker} {status}", flush=True)


serve(sys.argv[sys.argv.index("--") + 1])
