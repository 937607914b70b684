"""blenderapp's pure parts, no engine: splitting, parameters, merging, image comparison, crop choice."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest

from apps.blenderapp import render
from apps.blenderapp.imaging import load_png, merge, psnr, save_png, ssim
from apps.blenderapp.plan import Plan, new_plan, parse_resolution
from apps.blenderapp.regions import Box, split
from apps.blenderapp.verification import CROP, compare, crop_box, load_claim, structured_crop, thresholds
from apps.sdk import InvalidArgument
from runtime.appmanager.loading import load_descriptor


def picture(height: int = 60, width: int = 80, seed: int = 1) -> np.ndarray:
    """A textured test picture: gradients, a bright square and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 3 % 256, y * 4 % 256, (x + y) * 2 % 256], axis=2).astype(np.int64)
    base[10:30, 20:45] = 250
    noisy: np.ndarray = np.clip(base + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8)
    return noisy


@pytest.mark.parametrize(("height", "parts"), [(120, 4), (121, 4), (7, 7), (480, 3)])
def test_split_covers_every_row_once(height: int, parts: int) -> None:
    boxes = split(64, height, parts)
    assert boxes[0].top == 0 and boxes[-1].bottom == height and len(boxes) == parts
    assert all(a.bottom == b.top for a, b in itertools.pairwise(boxes))
    assert max(b.height for b in boxes) - min(b.height for b in boxes) <= 1


def test_split_refuses_more_parts_than_rows() -> None:
    with pytest.raises(ValueError, match="parts must be in"):
        split(10, 4, 5)


def test_task_parameters_are_checked_and_planned() -> None:
    plan = new_plan({"frames": 2, "resolution": "160x120", "parts": 3, "samples": 8}, "scene.py", 100)
    assert [(part.frame, part.index) for part in plan.parts] == [(f, i) for f in (1, 2) for i in range(3)]
    assert plan.parts[2].region == Box(0, 80, 160, 120)
    assert (plan.device, plan.denoise) == ("cpu", False)
    gpu = new_plan({"device": "gpu", "denoise": True}, "scene.py", 100)
    assert (gpu.device, gpu.denoise) == ("gpu", True)
    cases: list[tuple[dict[str, object], str]] = [
        ({"resolution": "big"}, "resolution"),
        ({"parts": 0}, "'parts'"),
        ({"samples": True}, "'samples'"),
        ({"colour": 1}, "unknown task parameters"),
        ({"device": "tpu"}, "'device' must be one of \\['cpu', 'gpu'\\], got 'tpu'"),
        ({"denoise": "yes"}, "'denoise' must be true or false, got 'yes'"),
    ]
    for bad, message in cases:
        with pytest.raises(InvalidArgument, match=message):
            new_plan(bad, "scene.py", 100)
    with pytest.raises(
        InvalidArgument, match="2 frames x 3 parts = 6 subtasks, more than max_subtasks_count 5"
    ):
        new_plan({"frames": 2, "parts": 3}, "scene.py", 5)
    assert len(new_plan({"frames": 2, "parts": 3}, "scene.py", 6).parts) == 6
    assert parse_resolution([64, 48]) == (64, 48)


def test_the_plan_survives_a_save_and_load(tmp_path: Path) -> None:
    plan = new_plan({"parts": 2}, "scene.py", 10)
    plan.parts[0].subtask_id = "s1"
    plan.save(tmp_path)
    assert Plan.load(tmp_path) == plan


def test_merge_puts_parts_in_place_and_png_round_trips(tmp_path: Path) -> None:
    frame = picture()
    parts = [(box, frame[box.top : box.bottom, box.left : box.right]) for box in split(80, 60, 4)]
    merged = merge(80, 60, parts)
    assert np.array_equal(merged, frame)
    save_png(merged, tmp_path / "f.png")
    assert np.array_equal(load_png(tmp_path / "f.png"), frame)


def test_similarity_measures_tell_copies_from_forgeries() -> None:
    frame = picture()
    assert ssim(frame, frame) == pytest.approx(1.0) and psnr(frame, frame) == float("inf")
    noise = np.random.default_rng(3).integers(0, 256, frame.shape, dtype=np.uint8)
    assert ssim(frame, noise) < 0.2 and psnr(frame, noise) < 15
    shifted = np.roll(frame, 2, axis=1)
    assert ssim(frame, shifted) < 0.95


def test_crops_lie_inside_their_part_and_prefer_structure() -> None:
    part = Box(0, 0, 80, 60)
    rng = random.Random(4)
    for _ in range(50):
        crop = crop_box(part, rng)
        assert part.contains(crop) and crop.width == CROP and crop.height == CROP
    flat = np.full((60, 80, 3), 128, dtype=np.uint8)
    flat[40:52, 60:72] = picture()[40:52, 60:72]  # the only structure is here
    crop = structured_crop(part, flat, random.Random(5))
    assert crop.right > 60 and crop.bottom > 40  # it overlaps the textured patch


def test_compare_accepts_the_truth_and_names_the_numbers_of_a_mismatch(tmp_path: Path) -> None:
    frame = picture()
    part = Box(0, 0, 80, 60)
    crop = Box(10, 10, 42, 42)
    reference = frame[10:42, 10:42]
    assert compare(frame, reference, part, crop).ok
    verdict = compare(np.roll(frame, 3, axis=0), reference, part, crop)
    assert not verdict.ok and "does not match: SSIM" in verdict.reason and "PSNR" in verdict.reason
    save_png(frame[:, :70], tmp_path / "small.png")
    small = load_claim(tmp_path / "small.png", part)
    assert not isinstance(small, np.ndarray) and small.reason == "part is 70x60 pixels, its region is 80x60"


def test_the_docker_gpu_build_asks_for_a_gpu_by_default() -> None:
    root = Path(__file__).resolve().parents[2]
    cpu = load_descriptor(root / "apps" / "blenderapp" / "descriptor.json")
    gpu = load_descriptor(root / "images" / "blenderapp" / "descriptor.json")
    assert (cpu.environment, cpu.resources.gpu, cpu.check_params({})["device"]) == (
        "docker_cpu",
        False,
        "cpu",
    )
    assert (gpu.environment, gpu.resources.gpu, gpu.check_params({})["device"]) == ("docker_gpu", True, "gpu")
    assert gpu.prerequisites == cpu.prerequisites  # one image for both
    assert new_plan(gpu.check_params({}), "scene.py", 10).device == "gpu"


def test_denoised_parts_are_held_to_their_own_tighter_thresholds() -> None:
    frame = picture()
    part, crop = Box(0, 0, 80, 60), Box(10, 10, 42, 42)
    reference = frame[10:42, 10:42]
    # A little brighter: the structure holds (SSIM), the values are off by about 33 dB.
    slightly_off = np.clip(frame.astype(np.int64) + 6, 0, 255).astype(np.uint8)
    assert 30 < psnr(slightly_off[10:42, 10:42], reference) < 36
    assert compare(slightly_off, reference, part, crop).ok
    refused = compare(slightly_off, reference, part, crop, denoised=True)
    assert not refused.ok and f"(needs >= {thresholds(True)[1]})" in refused.reason
    assert compare(frame, reference, part, crop, denoised=True).ok


@pytest.mark.parametrize(("cores", "threads"), [(1, 2), (2, 2), (3, 3), (16, 16)])
def test_cycles_renders_with_a_thread_per_core_and_never_with_one(
    monkeypatch: pytest.MonkeyPatch, cores: int, threads: int
) -> None:
    monkeypatch.setattr(render, "cpu_limit", lambda: cores)
    assert render.render_threads() == threads
    job = render.RenderJob.one(render.SAMPLE_SCENE, 1, (64, 48), 8, 0, Box(0, 0, 64, 48), Path("p.png"))
    assert json.loads(job.as_json(render.render_threads()))["threads"] == threads
