"""blenderapp's provider side: renders one part (a pixel box of one frame) to a PNG."""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

from apps.blenderapp.imaging import DEVICE_KEY, load_png, save_png
from apps.blenderapp.plan import SCENE_NAME, TASK_DEVICES
from apps.blenderapp.regions import Box
from apps.blenderapp.render import RenderJob, render
from apps.blenderapp.requestor import benchmark
from apps.blenderapp.scene_files import SCENE_FOLDER, check_files, place_scene, scene_path
from apps.sdk import InvalidArgument, JsonDict, ProviderAppHandler, ProviderTaskDir
from apps.sdk.workdir import check_id


def _job(task_dir: ProviderTaskDir, subtask_id: str, params: JsonDict) -> RenderJob:
    try:
        scene, frame, resolution = params["scene"], params["frame"], params["resolution"]
        samples, seed, box, output = params["samples"], params["seed"], params["box"], params["output"]
        device, denoise = params["device"], params["denoise"]
    except KeyError as exc:
        raise InvalidArgument(f"subtask parameter {exc} is missing") from exc
    if not (isinstance(scene, str) and SCENE_NAME.fullmatch(scene)):
        raise InvalidArgument(f"bad scene file name {scene!r}")
    numbers_ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (frame, samples, seed))
    if not numbers_ok or not (isinstance(resolution, list) and len(resolution) == 2):
        raise InvalidArgument(f"bad subtask parameters: {params!r}")
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) for v in box)):
        raise InvalidArgument(f"bad box {box!r}")
    if device not in TASK_DEVICES:
        raise InvalidArgument(f"bad device {device!r}: one of {list(TASK_DEVICES)}")
    if not isinstance(denoise, bool):
        raise InvalidArgument(f"bad denoise {denoise!r}: true or false")
    region = Box.from_list(box)
    width, height = int(resolution[0]), int(resolution[1])
    if not Box(0, 0, width, height).contains(region) or region.width < 1 or region.height < 1:
        raise InvalidArgument(f"box {box} is not inside a {width}x{height} frame")
    try:
        name = check_id("output name", str(output))
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    placed_as = scene_path(str(params.get("scene_path", scene)))
    if placed_as.suffix != PurePosixPath(scene).suffix:
        raise InvalidArgument(f"scene path {placed_as} does not end in {PurePosixPath(scene).suffix}")
    files = check_files(params.get("files", {}))
    scratch = task_dir.subtask_dir(subtask_id)
    placed = place_scene(task_dir.subtask_inputs, scene, placed_as, files, scratch)
    target = scratch / name
    return RenderJob.one(placed, frame, (width, height), samples, seed, region, target, device, denoise)


class BlenderProvider(ProviderAppHandler):
    """Renders `box` of `frame` of the scene, placed with its files (`scene_path`, `files`: see
    scene_files.py) in the subtask's dir, and returns `<subtask>/<output>`, a PNG whose text entry
    `taskapi:device` names the device that rendered it."""

    async def compute(self, task_dir: ProviderTaskDir, subtask_id: str, params: JsonDict) -> Path:
        job = _job(task_dir, subtask_id, params)
        try:
            rendered = await render(job)
        finally:
            shutil.rmtree(task_dir.subtask_dir(subtask_id) / SCENE_FOLDER, ignore_errors=True)
        [output] = rendered.outputs
        save_png(load_png(output), output, {DEVICE_KEY: rendered.device})
        return output.relative_to(task_dir.root)

    async def run_benchmark(self, work_dir: Path) -> float:
        return await benchmark(work_dir)
