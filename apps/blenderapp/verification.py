"""Verifying a rendered part: right size, then small crops re-rendered here must match it.

Two crops of at most `CROP` x `CROP` pixels are re-rendered by the requestor (one Blender job) with the
same scene, frame, samples, seed and denoising, at places a provider cannot know in advance (a system RNG),
on the requestor's GPU if its container has one, else its CPU:

- a *structured* crop: of `CANDIDATES` random places, the one where the claimed part has the most edge
  energy. Flat areas (a clear sky, clipped highlights) look the same shifted or not, so a crop there proves
  little; edges pin the geometry, so a shifted or re-arranged part fails here;
- a *uniform* crop anywhere in the part, so flat areas are checked too (a wrong colour, a blank part).

Cycles with a fixed seed gives a pixel the same value whatever box it is rendered in (measured here on the
CPU: at most 2/255 apart, from thread scheduling), so an honest part matches almost exactly. A crop
matches when

    SSIM >= SSIM_THRESHOLD (0.95)   and   PSNR >= PSNR_THRESHOLD (30 dB)

and a part is accepted when both crops match. Measured on the sample scene (8-16 samples): honest parts
give SSIM > 0.99 and PSNR > 45 dB; noise gives SSIM ~0.02, another region of the frame ~0.03, the part
shifted by two pixels ~0.3-0.8 at the structured crop. What a crop cannot catch: a forgery that is right
on both crops and wrong elsewhere; the chance of catching it grows with the forged area.

A denoised part is compared with a denoised crop (both rendered with a margin, see `blender_job.py`).
OpenImageDenoise smooths away the sampling noise that made a cheaper render stand out, and a crop's
denoiser sees a little less of the frame than the part's did, so denoised parts have their own thresholds,
DENOISED_SSIM_THRESHOLD and DENOISED_PSNR_THRESHOLD, set from `bench/blender_verification.py`'s
distributions (docs/verification.md): every honest crop measured passes, and parts rendered with far fewer
samples, or not denoised at all, are refused more often than with the plain thresholds, but not always.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from apps.blenderapp.imaging import Pixels, load_png, psnr, ssim
from apps.blenderapp.plan import Part, Plan
from apps.blenderapp.regions import Box
from apps.blenderapp.render import RenderJob, render
from apps.blenderapp.scene_files import SCENE_FOLDER, place_scene

CROP = 32
CANDIDATES = 24
SSIM_THRESHOLD = 0.95
PSNR_THRESHOLD = 30.0
DENOISED_SSIM_THRESHOLD = 0.98
DENOISED_PSNR_THRESHOLD = 36.0


def thresholds(denoised: bool) -> tuple[float, float]:
    """The (SSIM, PSNR) a re-rendered crop must reach, for plain or denoised parts."""
    if denoised:
        return DENOISED_SSIM_THRESHOLD, DENOISED_PSNR_THRESHOLD
    return SSIM_THRESHOLD, PSNR_THRESHOLD


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    ssim: float | None = None
    psnr: float | None = None


def crop_box(part: Box, rng: random.Random, size: int = CROP) -> Box:
    """A random box of at most size x size pixels inside `part`."""
    width, height = min(size, part.width), min(size, part.height)
    left = part.left + rng.randrange(part.width - width + 1)
    top = part.top + rng.randrange(part.height - height + 1)
    return Box(left, top, left + width, top + height)


def edge_energy(pixels: Pixels) -> float:
    """Mean absolute luma gradient: how much structure an image has."""
    luma = pixels.astype(np.float64).mean(axis=2)
    return float(np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean())


def structured_crop(part: Box, claimed: Pixels, rng: random.Random) -> Box:
    """Of `CANDIDATES` random crops, the one where the claimed part has the most structure."""
    candidates = [crop_box(part, rng) for _ in range(CANDIDATES)]

    def energy(box: Box) -> float:
        inner = part.relative(box)
        return edge_energy(claimed[inner.top : inner.bottom, inner.left : inner.right])

    return max(candidates, key=energy)


def compare(claimed: Pixels, reference: Pixels, part: Box, crop: Box, denoised: bool = False) -> Verdict:
    """Compare the crop of a claimed part against the crop rendered here."""
    inner = part.relative(crop)
    candidate = claimed[inner.top : inner.bottom, inner.left : inner.right]
    similarity, noise = ssim(candidate, reference), psnr(candidate, reference)
    min_ssim, min_psnr = thresholds(denoised)
    if similarity < min_ssim or noise < min_psnr:
        return Verdict(
            False,
            f"re-rendered crop {crop.as_list()} does not match: SSIM {similarity:.3f} "
            f"(needs >= {min_ssim}), PSNR {noise:.1f} dB (needs >= {min_psnr})",
            similarity,
            noise,
        )
    return Verdict(True, "", similarity, noise)


def load_claim(path: Path, part: Box) -> Pixels | Verdict:
    """The claimed part's pixels, or a failed verdict if it is unreadable or the wrong size."""
    try:
        pixels = load_png(path)
    except ValueError as exc:
        return Verdict(False, str(exc))
    if pixels.shape[:2] != (part.height, part.width):
        return Verdict(
            False,
            f"part is {pixels.shape[1]}x{pixels.shape[0]} pixels, its region is {part.width}x{part.height}",
        )
    return pixels


async def verify_part(plan: Plan, part: Part, claimed_path: Path, inputs: Path, scratch: Path) -> Verdict:
    """Re-render a structured and a uniform crop of `part` into `scratch` (the scene and its files placed
    there from `inputs`, the task's subtask_inputs, as a provider places them) and compare them with the
    claim."""
    region = part.region
    claimed = load_claim(claimed_path, region)
    if isinstance(claimed, Verdict):
        return claimed
    rng = random.SystemRandom()
    crops = [structured_crop(region, claimed, rng), crop_box(region, rng)]
    regions = tuple((crop, scratch / f"crop{i}.png") for i, crop in enumerate(crops))
    files = {resource: PurePosixPath(path) for resource, path in plan.files.items()}
    scene = place_scene(inputs, plan.scene, PurePosixPath(plan.scene_in_folder), files, scratch)
    job = RenderJob(
        scene, part.frame, (plan.width, plan.height), plan.samples, plan.seed, regions, "auto", plan.denoise
    )
    try:
        references = (await render(job)).outputs
    finally:
        shutil.rmtree(scratch / SCENE_FOLDER, ignore_errors=True)
    verdicts = [
        compare(claimed, load_png(reference), region, crop, plan.denoise)
        for crop, reference in zip(crops, references, strict=True)
    ]
    failed = next((verdict for verdict in verdicts if not verdict.ok), None)
    if failed is not None:
        return failed
    return Verdict(True, "", min(v.ssim or 0 for v in verdicts), min(v.psnr or 0 for v in verdicts))
