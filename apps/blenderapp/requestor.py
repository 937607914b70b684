"""blenderapp's requestor side: splits frames into parts, verifies each part by re-rendering a random crop,
and merges verified parts into task_outputs/frameNNNN.png."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from apps.blenderapp.imaging import DEVICE_KEY, load_png, merge, png_text, save_png
from apps.blenderapp.plan import SCENE_NAME, PartState, Plan, new_plan
from apps.blenderapp.regions import Box
from apps.blenderapp.render import SAMPLE_SCENE, RenderJob, render
from apps.blenderapp.scene_files import scene_path, share_inputs
from apps.blenderapp.verification import verify_part
from apps.sdk import (
    CreatedTask,
    InvalidArgument,
    JsonDict,
    RequestorAppHandler,
    RequestorTaskDir,
    Subtask,
    VerifyResult,
)
from apps.sdk.result_info import ReportsResultInfo
from apps.sdk.sandboxed_files import UnsafePath, copy_file

ENV_IDS = {"cpu": "docker_cpu", "gpu": "docker_gpu"}
GPU_DEVICES = ("OPTIX", "CUDA")
IMAGE = {"image": "taskapi/blenderapp", "tag": "0.1.0"}
MIN_MEMORY_MIB = 1024
PARTS_DIR = "parts"
VERIFY_DIR = "verification"


def frame_file(frame: int) -> str:
    return f"frame{frame:04d}.png"


class BlenderRequestor(RequestorAppHandler, ReportsResultInfo):
    """Plans parts, verifies them by re-rendering, merges verified frames. Each accepted part's device (its
    PNG's `taskapi:device`, written by the provider) is kept in the plan, named in its verification message,
    reported to the node (`device`, shown by `taskapi task status`) and, for every frame, in the merged
    PNG's `taskapi:device`; a GPU task refuses a part that says it was rendered on anything but OptiX or
    CUDA."""

    async def create_task(
        self, task_dir: RequestorTaskDir, max_subtasks_count: int, params: JsonDict
    ) -> CreatedTask:
        scene = params.get("scene", "sample")
        if not isinstance(scene, str):
            raise InvalidArgument(f"task parameter 'scene' must be a string, got {scene!r}")
        if scene == "sample":
            plan = new_plan(params, "scene.py", max_subtasks_count)
            shutil.copyfile(SAMPLE_SCENE, task_dir.subtask_inputs / plan.scene)
        else:
            path = scene_path(scene)
            if not (SCENE_NAME.fullmatch(path.name) and (task_dir.task_inputs / path).is_file()):
                raise InvalidArgument(
                    f"scene {scene!r} is neither 'sample' nor a .py/.blend file in task_inputs"
                )
            plan = new_plan(params, "scene" + path.suffix, max_subtasks_count)
            try:
                copy_file(task_dir.task_inputs, path, task_dir.subtask_inputs / plan.scene)
            except UnsafePath as exc:
                raise InvalidArgument(f"task input {exc}") from None
            plan.scene_path, plan.files = path.as_posix(), share_inputs(task_dir, path)
        plan.save(task_dir.root)
        return CreatedTask(env_id=ENV_IDS[plan.device], prerequisites=IMAGE, min_memory_mib=MIN_MEMORY_MIB)

    async def next_subtask(
        self, task_dir: RequestorTaskDir, subtask_id: str, opaque_node_id: str
    ) -> Subtask | None:
        plan = Plan.load(task_dir.root)
        part = plan.next_pending()
        if part is None:
            return None
        part.state, part.subtask_id = PartState.ASSIGNED, subtask_id
        plan.save(task_dir.root)
        params = {
            "scene": plan.scene,
            "frame": part.frame,
            "resolution": [plan.width, plan.height],
            "samples": plan.samples,
            "seed": plan.seed,
            "device": plan.device,
            "denoise": plan.denoise,
            "box": part.box,
            "output": part.file_name,
            "scene_path": plan.scene_in_folder,
            "files": plan.files,
        }
        return Subtask(params=params, resources=[plan.scene, *plan.files])

    async def verify(self, task_dir: RequestorTaskDir, subtask_id: str) -> tuple[VerifyResult, str]:
        plan = Plan.load(task_dir.root)
        part = plan.by_subtask(subtask_id)
        if part is None or part.state is not PartState.ASSIGNED:
            return VerifyResult.FAILURE, f"subtask {subtask_id} holds no assigned part"
        claimed = task_dir.subtask_outputs(subtask_id) / part.file_name
        if not claimed.is_file():
            plan.release(subtask_id)
            plan.save(task_dir.root)
            return VerifyResult.FAILURE, f"the result has no {part.file_name}"
        device = png_text(claimed).get(DEVICE_KEY, "")
        if plan.device == "gpu" and not device.startswith(GPU_DEVICES):
            plan.release(subtask_id)
            plan.save(task_dir.root)
            return (
                VerifyResult.FAILURE,
                f"the task asked for a GPU; the part says it was rendered on {device!r}",
            )
        scratch = task_dir.root / VERIFY_DIR / subtask_id
        verdict = await verify_part(plan, part, claimed, task_dir.subtask_inputs, scratch)
        plan = Plan.load(task_dir.root)  # other verifications may have finished meanwhile
        part = plan.by_subtask(subtask_id)
        if part is None or part.state is not PartState.ASSIGNED:
            return VerifyResult.FAILURE, f"subtask {subtask_id} lost its part during verification"
        if not verdict.ok:
            plan.release(subtask_id)
            plan.save(task_dir.root)
            return VerifyResult.FAILURE, verdict.reason
        target = task_dir.root / PARTS_DIR / part.file_name
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(claimed, target)
        part.state, part.device = PartState.DONE, device
        plan.save(task_dir.root)
        await asyncio.to_thread(self._merge_if_complete, plan, task_dir, part.frame)
        scores = f"crop SSIM {verdict.ssim:.4f}, PSNR {verdict.psnr:.1f} dB"
        return VerifyResult.SUCCESS, f"rendered on {device or 'an unnamed device'}; {scores}"

    async def result_info(self, task_dir: RequestorTaskDir, subtask_id: str) -> dict[str, str]:
        part = Plan.load(task_dir.root).by_subtask(subtask_id)
        return {"device": part.device} if part is not None and part.device else {}

    @staticmethod
    def _merge_if_complete(plan: Plan, task_dir: RequestorTaskDir, frame: int) -> None:
        parts = plan.parts_of(frame)
        if any(part.state is not PartState.DONE for part in parts):
            return
        pieces = [(part.region, load_png(task_dir.root / PARTS_DIR / part.file_name)) for part in parts]
        devices = ", ".join(sorted({part.device or "unnamed" for part in parts}))
        frame_path = task_dir.task_outputs / frame_file(frame)
        save_png(merge(plan.width, plan.height, pieces), frame_path, {DEVICE_KEY: devices})

    async def discard_subtasks(self, task_dir: RequestorTaskDir, subtask_ids: list[str]) -> list[str]:
        plan = Plan.load(task_dir.root)
        discarded = []
        for subtask_id in subtask_ids:
            part = plan.by_subtask(subtask_id)
            if part is None:
                continue
            if part.state is PartState.DONE:
                (task_dir.task_outputs / frame_file(part.frame)).unlink(missing_ok=True)
            part.state, part.subtask_id = PartState.PENDING, None
            discarded.append(subtask_id)
        plan.save(task_dir.root)
        return discarded

    async def has_pending_subtasks(self, task_dir: RequestorTaskDir) -> bool:
        return Plan.load(task_dir.root).next_pending() is not None

    async def abort_task(self, task_dir: RequestorTaskDir) -> None:
        """Nothing to undo: the protocol layer stops all further calls on the task."""

    async def abort_subtask(self, task_dir: RequestorTaskDir, subtask_id: str) -> None:
        plan = Plan.load(task_dir.root)
        plan.release(subtask_id)
        plan.save(task_dir.root)

    async def run_benchmark(self, work_dir: Path) -> float:
        return await benchmark(work_dir)


async def benchmark(work_dir: Path) -> float:
    """Renders of a small box of the sample scene per second (Blender's start-up included on a server's
    first render)."""
    began = time.monotonic()
    output = work_dir / ".blenderapp-benchmark.png"
    await render(RenderJob.one(SAMPLE_SCENE, 1, (160, 120), 8, 0, Box(0, 0, 64, 64), output))
    output.unlink(missing_ok=True)
    return 1.0 / (time.monotonic() - began)
