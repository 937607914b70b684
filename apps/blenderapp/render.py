"""Rendering with Blender: one job (scene, frame, resolution, samples, seed, device, denoise, pixel boxes)
-> PNGs, and the device that rendered them.

Blender is a Python module here (`bpy`, Blender 4.5 LTS, in the app image): a worker process
(`BlenderWorker`, running `blender_job.py`) imports it once per app server and stays loaded, since loading it
costs more than a small part or a verification crop takes to render. Each job starts from the factory
settings, as a fresh Blender would, and a .blend's embedded scripts never run. A job that fails or times out
costs only itself: a worker that died or hung is replaced.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from apps.blenderapp.regions import Box

HERE = Path(__file__).resolve().parent
JOB_SCRIPT = HERE / "blender_job.py"
SAMPLE_SCENE = HERE / "scenes" / "sample.py"
RENDER_TIMEOUT_S = 3600.0
DEVICES = ("cpu", "gpu", "auto")
"""cpu: Cycles on the CPU; gpu: OptiX, else CUDA, and a failure when the container has neither; auto: the
GPU when there is one, else the CPU (the requestor's verification renders, whatever machine it runs on)."""


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
    device: str = "cpu"
    denoise: bool = False

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
        device: str = "cpu",
        denoise: bool = False,
    ) -> RenderJob:
        return cls(scene, frame, resolution, samples, seed, ((box, output),), device, denoise)

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
                "device": self.device,
                "denoise": self.denoise,
                "regions": [[box.as_list(), str(output)] for box, output in self.regions],
            }
        )


MIN_CPU_THREADS = 2
"""Cycles renders on the CPU with at least this many threads, even in a container of one core. With one
thread, bpy 4.5 keeps a second thread busy beside the render thread (sampled per thread from /proc: 2.5-3.1
s of CPU beside 6.5-7.0 s of rendering), so in a 1-core container a part's render cost 9.7-12.9 s of CPU
with one thread and 6.7-7.2 s with two or three (640x120 strips of the sample scene at 32 samples), and
took longer: two threads sharing one core finish sooner than one. In bench/docker_overhead.py the four
1-core parts of a 640x480 frame used 131 s of CPU against the whole frame's 89 s with one thread each, and
89 s against 85 s with two (docs/docker.md)."""


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


def render_threads() -> int:
    """Cycles' CPU threads for a job: one per core this process may use, and at least MIN_CPU_THREADS."""
    return max(MIN_CPU_THREADS, cpu_limit())


@dataclass(frozen=True)
class Rendered:
    """A job's PNGs, in the order of its regions, and the device that rendered them ("CPU",
    "OPTIX (NVIDIA ...)", "CUDA (NVIDIA ...)")."""

    outputs: list[Path]
    device: str


JOB_DONE = "TASKAPI-BLENDER-JOB-DONE"
"""The line start by which `blender_job.py` answers a job (passed to it on its command line)."""
LOG_TAIL_LINES = 40
LOG_TAIL_CHARS = 1500


class BlenderWorker:
    """One Blender process that renders jobs one at a time, for the event loop that started it."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._lock = asyncio.Lock()
        self._scratch = tempfile.TemporaryDirectory(prefix="blenderapp-")
        self._process: asyncio.subprocess.Process | None = None
        self._jobs = 0

    @property
    def pid(self) -> int | None:
        """The Blender process serving jobs now; None before the first job and after a kill."""
        return self._process.pid if self._process is not None else None

    async def render(self, job: RenderJob, timeout: float) -> str:
        """Render `job`; the device used. `RenderFailed` with the end of Blender's log when it failed."""
        async with self._lock:
            process = await self._started()
            self._jobs += 1
            job_file = Path(self._scratch.name) / f"job-{self._jobs}.json"
            job_file.write_text(job.as_json(render_threads()))
            try:
                assert process.stdin is not None
                process.stdin.write(f"{job_file}\n".encode())
                await process.stdin.drain()
                answer, log = await asyncio.wait_for(self._answer(process), timeout)
            except TimeoutError:
                self._kill()
                raise RenderFailed(f"blender took longer than {timeout:g} s") from None
            except BaseException:  # died, or the caller gave up (cancelled): its answer must not be read
                self._kill()  # as the next job's
                raise
            finally:
                job_file.unlink(missing_ok=True)
        if answer["status"] != "ok":
            raise RenderFailed(f"blender: {answer['status']}: {log}")
        return answer["device"]

    async def _started(self) -> asyncio.subprocess.Process:
        if self._process is None or self._process.returncode is not None:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(JOB_SCRIPT),
                JOB_DONE,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "HOME": self._scratch.name},
            )
        return self._process

    @staticmethod
    async def _answer(process: asyncio.subprocess.Process) -> tuple[dict[str, str], str]:
        """The worker's answer to the job just sent, and the log lines Blender printed before it."""
        assert process.stdout is not None
        log: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        while line := (await process.stdout.readline()).decode(errors="replace"):
            if line.startswith(JOB_DONE):
                answer: dict[str, str] = json.loads(line[len(JOB_DONE) :])
                return answer, "".join(log)[-LOG_TAIL_CHARS:]
            log.append(line)
        code = await process.wait()
        raise RenderFailed(f"blender exited with code {code}: {''.join(log)[-LOG_TAIL_CHARS:]}")

    def _kill(self) -> None:
        """End Blender mid-job; the next job starts a new one."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.kill()


_worker: BlenderWorker | None = None


async def render(job: RenderJob, timeout: float = RENDER_TIMEOUT_S) -> Rendered:
    """Render `job`: its output PNGs and the device used; `RenderFailed` with Blender's log tail otherwise."""
    global _worker
    for output in job.outputs:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.unlink(missing_ok=True)
    if _worker is None or _worker.loop is not asyncio.get_running_loop():
        _worker = BlenderWorker()
    device = await _worker.render(job, timeout)
    missing = [str(path) for path in job.outputs if not path.is_file()]
    if missing:
        raise RenderFailed(f"blender said ok but wrote no {', '.join(missing)}")
    return Rendered(job.outputs, device)
