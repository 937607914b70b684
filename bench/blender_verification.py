"""How far apart honest and forged blenderapp parts score against the verifier's re-rendered crops.

In one container of the blenderapp image (2 cores, no network), for every part of `--frames` frames of the
sample scene split into `--parts` strips: the part rendered honestly, then the crops the verifier would pick
(`verification.structured_crop` and `crop_box`, re-rendered as it does), and each crop's SSIM and PSNR for
the honest part and for forgeries of it:

    noisy          the part rendered without denoising (a provider that skipped it)
    few samples    the part rendered with `--cheap-samples` samples and denoised (a cheaper render passed off)
    shifted        the honest part moved two pixels sideways
    wrong region   the next strip's pixels (of the same size)
    other seed     an honest render with another seed (not a forgery: how much two honest renders differ)

It prints, per kind, the number of crops, min / median / max SSIM and PSNR, how many crops pass
`verification`'s thresholds (those for denoised parts with `--denoise on`) and how many parts would be
accepted (both their crops passing). `--denoise off` measures the same without denoising (minus the noisy
kind); `--raw FILE` keeps every crop's scores as JSON.

    python bench/blender_verification.py [--frames 4] [--parts 4] [--resolution 160x120] [--samples 16]
                                         [--denoise on|off] [--raw FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path

from apps.blenderapp.verification import thresholds
from environments.docker.images import release_name

PROBE = """
import asyncio, json, random, sys
from pathlib import Path
import numpy as np
from apps.blenderapp import render as r
from apps.blenderapp.imaging import load_png, psnr, ssim
from apps.blenderapp.regions import split
from apps.blenderapp.verification import crop_box, structured_crop

frames, parts, width, height, samples, cheap, denoise = (int(v) for v in sys.argv[1:])
work = Path("/tmp/bench")

async def part(frame, box, name, samples=samples, seed=0, denoise=denoise):
    job = r.RenderJob.one(r.SAMPLE_SCENE, frame, (width, height), samples, seed, box, work / name, "cpu",
                          bool(denoise))
    return load_png((await r.render(job)).outputs[0])

async def main():
    rng = random.Random(7)
    for frame in range(1, frames + 1):
        boxes = split(width, height, parts)
        for index, box in enumerate(boxes):
            honest = await part(frame, box, "honest.png")
            neighbour = boxes[(index + 1) % parts]
            forged = {
                "shifted": np.roll(honest, 2, axis=1),
                "other seed": await part(frame, box, "seed.png", seed=1),
                "few samples": await part(frame, box, "cheap.png", samples=cheap),
            }
            if neighbour.height == box.height:
                forged["wrong region"] = await part(frame, neighbour, "next.png")
            if denoise:
                forged["noisy"] = await part(frame, box, "noisy.png", denoise=0)
            crops = [structured_crop(box, honest, rng), crop_box(box, rng)]
            regions = tuple((crop, work / f"crop{i}.png") for i, crop in enumerate(crops))
            job = r.RenderJob(r.SAMPLE_SCENE, frame, (width, height), samples, 0, regions, "auto",
                              bool(denoise))
            references = [load_png(p) for p in (await r.render(job)).outputs]
            for crop, reference in zip(crops, references):
                inner = box.relative(crop)
                for kind, pixels in {"honest": honest, **forged}.items():
                    candidate = pixels[inner.top : inner.bottom, inner.left : inner.right]
                    scores = [kind, ssim(candidate, reference), psnr(candidate, reference)]
                    print(json.dumps(scores), flush=True)

asyncio.run(main())
"""


def measure(image: str, args: argparse.Namespace) -> dict[str, list[tuple[float, float]]]:
    width, height = args.resolution.split("x")
    settings = [
        args.frames,
        args.parts,
        width,
        height,
        args.samples,
        args.cheap_samples,
        args.denoise == "on",
    ]
    command = ["docker", "run", "--rm", "--network", "none", "--cpus", "2", "--entrypoint", "python3", image]
    ran = subprocess.run(
        [*command, "-c", PROBE, *(str(int(v)) for v in settings)], capture_output=True, text=True
    )
    if ran.returncode != 0:
        raise SystemExit(f"the probe failed: {ran.stderr[-2000:]}")
    scores: dict[str, list[tuple[float, float]]] = {}
    for line in ran.stdout.splitlines():
        if line.startswith("["):
            kind, similarity, noise = json.loads(line)
            scores.setdefault(kind, []).append((float(similarity), float(noise)))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--resolution", default="160x120")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--cheap-samples", type=int, default=2)
    parser.add_argument("--denoise", choices=("on", "off"), default="on")
    parser.add_argument("--raw", type=Path, help="write every crop's scores here (JSON)")
    args = parser.parse_args()
    image = release_name("blenderapp")
    scores = measure(image, args)
    if args.raw:
        args.raw.write_text(json.dumps(scores))
    min_ssim, min_psnr = thresholds(args.denoise == "on")
    print(
        f"{image}, sample scene {args.resolution}, {args.samples} samples, denoise {args.denoise}, "
        f"{args.frames} frames x {args.parts} parts, 2 crops each; thresholds SSIM >= {min_ssim}, "
        f"PSNR >= {min_psnr} dB"
    )
    header = "SSIM min / median / max   PSNR dB min / median / max   crops passing  parts accepted"
    print(f"{'kind':<13} crops  {header}")
    for kind, values in scores.items():
        ssims = [s for s, _ in values]
        psnrs = [min(p, 99.0) for _, p in values]
        passes = [s >= min_ssim and p >= min_psnr for s, p in values]
        passing = sum(passes)
        accepted = sum(a and b for a, b in zip(passes[0::2], passes[1::2], strict=True))
        ssim_range = f"{min(ssims):.3f} / {statistics.median(ssims):.3f} / {max(ssims):.3f}"
        psnr_range = f"{min(psnrs):5.1f} / {statistics.median(psnrs):5.1f} / {max(psnrs):5.1f}"
        print(
            f"{kind:<13} {len(values):>5}  {ssim_range}     {psnr_range}        {passing:>2}/{len(values)}"
            f"          {accepted:>2}/{len(values) // 2}"
        )


if __name__ == "__main__":
    main()
