"""blenderapp's devices and denoising in docker_cpu containers (no GPU here): every result names the device
that rendered it, a task that asked for a GPU fails with a clear reason instead of rendering on the CPU, and
denoised frames split into parts are verified and match a denoised whole-frame render."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from apps.blenderapp.imaging import DEVICE_KEY, load_png, png_text, psnr, save_png, ssim
from apps.sdk.client import RequestorAppClient
from apps.sdk.handlers import VerifyResult
from environments.docker import ComputeFailed, DockerAppServer, DockerCpuEnvironment, compute_subtask
from environments.docker.images import release_name

from .conftest import require_engine_and_images
from .drive import deliver, run_task

PARAMS = {"scene": "sample", "frames": 1, "resolution": "96x72", "samples": 8, "parts": 2}
NO_GPU = "GPU requested but Cycles sees no CUDA/OptiX device"


@pytest.fixture(scope="module")
def blender_image() -> str:
    require_engine_and_images("blenderapp")
    return release_name("blenderapp")


def test_every_part_and_frame_names_the_device_that_rendered_it(
    docker_env: DockerCpuEnvironment, blender_image: str, tmp_path: Path
) -> None:
    run = asyncio.run(run_task(docker_env, blender_image, tmp_path, "cpu", PARAMS))
    assert sorted(run.results) == ["s1", "s2"]
    for subtask_id, result in run.results.items():
        assert png_text(result.output)[DEVICE_KEY] == "CPU"
        verdict, reason = run.verdicts[subtask_id]
        assert verdict is VerifyResult.SUCCESS and reason.startswith("rendered on CPU; crop SSIM"), reason
    assert png_text(run.outputs / "frame0001.png")[DEVICE_KEY] == "CPU"


async def gpu_task(env: DockerCpuEnvironment, image: str, work: Path) -> dict[str, object]:
    """A device=gpu task: its subtask computed in a container without a GPU, then claims delivered."""
    server = DockerAppServer(env, image, "requestor", work / "requestor")
    client = RequestorAppClient(await server.start())
    seen: dict[str, object] = {}
    try:
        created = await client.create_task("gpu", 100, {**PARAMS, "device": "gpu"})
        seen["env_id"] = created.env_id
        subtask = await client.next_subtask("gpu", "g1")
        assert subtask is not None
        seen["params"] = subtask.params
        provider = work / "provider"
        (provider / "subtask_inputs").mkdir(parents=True)
        inputs = work / "requestor" / "gpu" / "subtask_inputs"
        (provider / "subtask_inputs" / "scene.py").write_bytes((inputs / "scene.py").read_bytes())
        try:
            await compute_subtask(env, image, provider, "gpu", "g1", subtask.params)
            seen["compute"] = "rendered"
        except ComputeFailed as exc:
            seen["compute"] = str(exc)
        seen["pngs"] = sorted(path.name for path in provider.rglob("*.png"))
        # A provider that rendered on the CPU anyway, and one that names no device: both refused.
        cpu_part = await compute_subtask(
            env, image, provider, "gpu", "g1", {**subtask.params, "device": "cpu"}
        )
        claims = {"cpu": {DEVICE_KEY: "CPU"}, "unnamed": {}}
        for kind, text in claims.items():
            if kind != "cpu":
                await client.next_subtask("gpu", f"g-{kind}")
            subtask_id = "g1" if kind == "cpu" else f"g-{kind}"
            claim = work / "claims" / kind / cpu_part.output.name
            save_png(load_png(cpu_part.output), claim, text)
            await deliver(work, "gpu", subtask_id, claim)
            seen[kind] = await client.verify("gpu", subtask_id)
        await client.shutdown()
    finally:
        client.close()
        await server.wait(timeout=10)
    return seen


def test_a_gpu_task_without_a_gpu_fails_clearly_and_never_renders_on_the_cpu(
    docker_env: DockerCpuEnvironment, blender_image: str, tmp_path: Path
) -> None:
    seen = asyncio.run(gpu_task(docker_env, blender_image, tmp_path))
    assert seen["env_id"] == "docker_gpu"
    params = seen["params"]
    assert isinstance(params, dict) and params["device"] == "gpu"
    assert NO_GPU in str(seen["compute"]), seen["compute"]
    assert seen["pngs"] == []  # nothing rendered on the CPU instead
    assert seen["cpu"] == (
        VerifyResult.FAILURE,
        "the task asked for a GPU; the part says it was rendered on 'CPU'",
    )
    assert seen["unnamed"] == (
        VerifyResult.FAILURE,
        "the task asked for a GPU; the part says it was rendered on ''",
    )


def test_a_denoised_frame_split_into_parts_is_verified_and_matches_a_denoised_whole_render(
    docker_env: DockerCpuEnvironment, blender_image: str, tmp_path: Path
) -> None:
    params = {**PARAMS, "resolution": "128x96", "parts": 3, "denoise": True}
    split = asyncio.run(run_task(docker_env, blender_image, tmp_path / "split", "split", params))
    assert [verdict for verdict, _ in split.verdicts.values()] == [VerifyResult.SUCCESS] * 3, split.verdicts
    whole = asyncio.run(
        run_task(docker_env, blender_image, tmp_path / "whole", "whole", {**params, "parts": 1})
    )
    noisy = asyncio.run(
        run_task(
            docker_env, blender_image, tmp_path / "noisy", "noisy", {**params, "parts": 1, "denoise": False}
        )
    )
    merged, reference = load_png(split.outputs / "frame0001.png"), load_png(whole.outputs / "frame0001.png")
    assert ssim(merged, reference) >= 0.99 and psnr(merged, reference) >= 35
    # Denoising did something: the noisy render is further from the denoised one than the parts are.
    assert ssim(load_png(noisy.outputs / "frame0001.png"), reference) < ssim(merged, reference)
