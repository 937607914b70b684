"""blenderapp's provider side: renders one part (a pixel box of one frame) to a PNG."""

from __future__ import annotations

from pathlib import Path

from apps.blenderapp.imaging import DEVICE_KEY, load_png, save_png
from apps.blenderapp.plan import SCENE_NAME, TASK_DEVICES
from apps.blenderapp.regions import Box
from apps.blenderapp.render import RenderJob, render
from apps.blenderapp.requestor import benchmark
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
    name = check_id("output name", str(output))
    scene_path = task_dir.subtask_inputs / scene
    if not scene_path.is_file():
        raise InvalidArgument(f"the scene {scene} was not delivered")
    target = task_dir.subtask_dir(subtask_id) / name
    return RenderJob.one(scene_path, frame, (width, height), samples, seed, region, target, device, denoise)


class BlenderProvider(ProviderAppHandler):
    """Renders `box` of `frame` and returns `<subtask>/<output>`, a PNG whose text entry `taskapi:device`
    names the device that rendered it."""

    async def compute(self, task_dir: ProviderTaskDir, subtask_id: str, params: JsonDict) -> Path:
        job = _job(task_dir, subtask_id, params)
        rendered = await render(job)
        [output] = rendered.outputs
        save_png(load_png(output), output, {DEVICE_KEY: rendered.device})
        return output.relative_to(task_dir.root)

    async def run_benchmark(self, work_dir: Path) -> float:
        return await benchmark(work_dir)
