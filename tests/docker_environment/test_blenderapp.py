"""blenderapp in docker_cpu: a frame split into parts by `taskapi run`, rendered by provider containers,
verified by re-rendered crops and merged, matches a whole-frame render; forged parts are rejected."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from apps.blenderapp.imaging import load_png, psnr, save_png, ssim
from apps.sdk.client import RequestorAppClient
from apps.sdk.handlers import VerifyResult
from environments.docker import DockerAppServer, DockerCpuEnvironment, compute_subtask
from environments.docker.images import release_name
from environments.status import RuntimeStatus

from .conftest import require_engine_and_images
from .drive import deliver, run_task, taskapi_run
from .support import python, run_sync

PARAMS = {"scene": "sample", "frames": 1, "resolution": "160x120", "samples": 8, "parts": 4}


@pytest.fixture(scope="module")
def blender_image() -> str:
    require_engine_and_images("blenderapp")
    return release_name("blenderapp")


def test_a_split_frame_is_verified_merged_and_matches_a_whole_render(
    docker_env: DockerCpuEnvironment, blender_image: str, tmp_path: Path
) -> None:
    # As a user runs it: a requestor container, provider containers, every part verified by the app.
    summary = taskapi_run("blenderapp", "docker_cpu", PARAMS, tmp_path / "split")
    assert summary["subtasks"] == {"accepted": 4}
    merged = load_png(tmp_path / "split" / "frame0001.png")
    assert merged.shape == (120, 160, 3)
    whole = asyncio.run(
        run_task(docker_env, blender_image, tmp_path / "whole", "whole", {**PARAMS, "parts": 1})
    )
    reference = load_png(whole.outputs / "frame0001.png")
    assert ssim(merged, reference) >= 0.99 and psnr(merged, reference) >= 35
    assert merged.std() > 10  # a real picture, not a flat colour


async def forgeries(env: DockerCpuEnvironment, image: str, work: Path) -> list[tuple[str, VerifyResult, str]]:
    server = DockerAppServer(env, image, "requestor", work / "requestor")
    client = RequestorAppClient(await server.start())
    verdicts = []
    try:
        await client.create_task("forge", 100, PARAMS)
        inputs = work / "requestor" / "forge" / "subtask_inputs"
        honest = {}
        for index, subtask_id in enumerate(("h0", "h1")):  # render parts 0 and 1 honestly, verify neither yet
            subtask = await client.next_subtask("forge", subtask_id)
            assert subtask is not None and subtask.params["box"][1] == index * 30
            provider = work / "provider" / subtask_id
            (provider / "subtask_inputs").mkdir(parents=True)
            (provider / "subtask_inputs" / "scene.py").write_bytes((inputs / "scene.py").read_bytes())
            result = await compute_subtask(env, image, provider, "forge", subtask_id, subtask.params)
            honest[subtask_id] = load_png(result.output)
        name = "frame0001_part000.png"
        rng = np.random.default_rng(5)
        forged = {
            "noise": rng.integers(0, 256, honest["h0"].shape, dtype=np.uint8),
            "wrong region": honest["h1"],
            "shifted": np.roll(honest["h0"], 2, axis=1),
            "wrong size": honest["h0"][:, :150],
            "not an image": None,
        }
        await client.abort_subtask("forge", "h1")
        for number, (kind, pixels) in enumerate(forged.items()):
            subtask_id = f"forged{number}" if number else "h0"
            if number:
                subtask = await client.next_subtask("forge", subtask_id)
                assert subtask is not None and subtask.params["box"][1] == 0
            claim = work / "claims" / kind.replace(" ", "_") / name
            claim.parent.mkdir(parents=True)
            if pixels is None:
                claim.write_bytes(b"\x89PNG garbage")
            else:
                save_png(pixels, claim)
            await deliver(work, "forge", subtask_id, claim)
            verdict, reason = await client.verify("forge", subtask_id)
            verdicts.append((kind, verdict, reason))
        save_png(honest["h0"], work / "claims" / "honest" / name)
        await client.next_subtask("forge", "honest")
        await deliver(work, "forge", "honest", work / "claims" / "honest" / name)
        verdict, reason = await client.verify("forge", "honest")
        verdicts.append(("honest", verdict, reason))
        await client.shutdown()
    finally:
        client.close()
        await server.wait(timeout=10)
    return verdicts


def test_forged_parts_are_rejected_and_the_honest_one_accepted(
    docker_env: DockerCpuEnvironment, blender_image: str, tmp_path: Path
) -> None:
    verdicts = asyncio.run(forgeries(docker_env, blender_image, tmp_path))
    by_kind = {kind: (verdict, reason) for kind, verdict, reason in verdicts}
    print(json.dumps({kind: reason for kind, (_, reason) in by_kind.items()}, indent=1))
    for kind in ("noise", "wrong region", "shifted"):
        assert by_kind[kind][0] is VerifyResult.FAILURE and "does not match: SSIM" in by_kind[kind][1], kind
    assert by_kind["wrong size"] == (VerifyResult.FAILURE, "part is 150x30 pixels, its region is 160x30")
    assert (
        by_kind["not an image"][0] is VerifyResult.FAILURE
        and "not a readable image" in by_kind["not an image"][1]
    )
    assert by_kind["honest"][0] is VerifyResult.SUCCESS


WORKER_PROBE = """
import asyncio, json
from pathlib import Path
from apps.blenderapp import render as r
from apps.blenderapp.regions import Box

def job(name, scene=r.SAMPLE_SCENE, size=(32, 24), samples=1):
    return r.RenderJob.one(scene, 1, size, samples, 0, Box(0, 0, *size), Path(f"/golem/work/{name}.png"))

async def attempt(name, **kw):
    timeout = kw.pop("timeout", 600.0)
    try:
        await r.render(job(name, **kw), timeout)
        outcome = "ok"
    except r.RenderFailed as exc:
        outcome = str(exc)[:300]
    return {"outcome": outcome, "pid": r._worker.pid}

async def main():
    steps = [await attempt("first"), await attempt("second"),
             await attempt("missing", scene=Path("/nope/scene.py")), await attempt("after_error"),
             await attempt("slow", size=(640, 480), samples=256, timeout=0.5), await attempt("after_kill")]
    print(json.dumps(steps))

asyncio.run(main())
"""


def test_one_blender_serves_many_renders_and_a_failed_or_hung_job_costs_only_itself(
    docker_env: DockerCpuEnvironment, blender_image: str, tmp_path: Path
) -> None:
    """In a hardened container of the image: Blender stays loaded between renders, a job naming a missing
    scene fails with Blender's reason and leaves it loaded, a job past its timeout kills it, and the next
    job starts a new one that renders the same pixels as before."""
    runtime, status, logs = run_sync(docker_env, python(blender_image, WORKER_PROBE, work_dir=tmp_path))
    assert status is RuntimeStatus.STOPPED and runtime.exit_code == 0, logs
    first, second, missing, after_error, slow, after_kill = json.loads(logs.strip().splitlines()[-1])
    assert first["outcome"] == second["outcome"] == after_error["outcome"] == after_kill["outcome"] == "ok"
    assert first["pid"] == second["pid"] == missing["pid"] == after_error["pid"] is not None
    assert "FileNotFoundError" in missing["outcome"] and "/nope/scene.py" in missing["outcome"]
    assert slow["outcome"] == "blender took longer than 0.5 s" and slow["pid"] is None
    assert after_kill["pid"] not in (None, first["pid"])
    assert np.array_equal(load_png(tmp_path / "first.png"), load_png(tmp_path / "after_kill.png"))
