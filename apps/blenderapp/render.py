"""Rendering with Blender: one job (scene, frame, resolution, samples, seed, pixel box) -> one PNG.

Blender runs as a child process (`blender -b -noaudio --factory-startup`), which in the app image is
Debian's Blender 3.4 with Cycles on the CPU. `--factory-startup` also keeps a .blend's embedded scripts
from running.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from apps.blenderapp.regions import Box

HERE = Path(__file__).resolve().parent
JOB_SCRIPT = HERE / "blender_job.py"
SAMPLE_SCENE = HERE / "scenes" / "sample.py"
RENDER_TIMEOUT_S = 3600.0


class RenderFailed(RuntimeError):
    """Blender did not produce the image; the message has the end of its log."""


@dataclass(frozen=True)
class RenderJob:
    """What to render: boxes of frame `frame` of `scene` at `resolution` with `samples` and `seed`, each
    written to its own PNG."""

    scene: Path
    frame: int
    resolution: tuple[int, int]
    samples: int
    seed: int
    regions: tuple[tuple[Box, Path], ...]

    @classmethod
    def one(
        cls,
        scene: Path,
        frame: int,
        resolution: tuple[int, int],
        samples: int,
        seed: int,
        box: Box,
        output: Path,
    ) -> RenderJob:
        return cls(scene, frame, resolution, samples, seed, ((box, output),))

    @property
    def outputs(self) -> list[Path]:
        return [output for _, output in self.regions]

    def as_json(self, threads: int) -> str:
        return json.dumps(
            {
                "scene": str(self.scene),
                "frame": self.frame,
                "resolution": list(self.resolution),
                "samples": self.samples,
                "seed": self.seed,
                "threads": threads,
                "regions": [[box.as_list(), str(output)] for box, output in self.regions],
            }
        )


def cpu_limit() -> int:
    """The cores this process may use: its cgroup's CPU quota if it has one, else its affinity."""
    available = len(os.sched_getaffinity(0))
    candidates = [Path("/sys/fs/cgroup/cpu.max"), Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")]
    try:
        if candidates[0].is_file():
            quota, period = candidates[0].read_text().split()
            if quota != "max":
                return max(1, min(available, math.ceil(int(quota) / int(period))))
        elif candidates[1].is_file():
            quota_us = int(candidates[1].read_text())
            period_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            if quota_us > 0:
                return max(1, min(available, math.ceil(quota_us / period_us)))
    except (OSError, ValueError):
        pass
    return available


def blender_binary() -> str:
    found = shutil.which(os.environ.get("TASKAPI_BLENDER", "blender"))
    if found is None:
        raise RenderFailed("blender is not installed here (the blenderapp image has it)")
    return found


async def render(job: RenderJob, timeout: float = RENDER_TIMEOUT_S) -> list[Path]:
    """Render `job` and return its output PNGs; `RenderFailed` with Blender's log tail otherwise."""
    for output in job.outputs:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="blenderapp-") as scratch:
        job_file = Path(scratch) / "job.json"
        job_file.write_text(job.as_json(cpu_limit()))
        process = await asyncio.create_subprocess_exec(
            blender_binary(),
            "-b",
            "-noaudio",
            "--factory-startup",
            "--python-exit-code",
            "3",
            "--python",
            str(JOB_SCRIPT),
            "--",
            str(job_file),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "HOME": scratch},
        )
        try:
            log, _ = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RenderFailed(f"blender took longer than {timeout:.0f} s") from None
    if process.returncode != 0 or not all(path.is_file() for path in job.outputs):
        tail = log.decode(errors="replace")[-1500:]
        raise RenderFailed(f"blender exited with code {process.returncode}: {tail}")
    return job.outputs
