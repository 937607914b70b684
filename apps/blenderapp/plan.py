"""The requestor's plan of a render task: its parameters and every part (frame, box), kept in the task dir.

Task parameters: `scene` ("sample", the shipped scene script, or the path of a .py scene script or .blend
in task_inputs, whose other files go along with it as its textures and libraries: see scene_files.py),
`frames` (how many, from `frame_start`), `resolution` ("WIDTHxHEIGHT"), `samples`, `parts` (per frame),
`seed`, `device` ("cpu", or "gpu": OptiX or CUDA, never the CPU instead), `denoise` (OpenImageDenoise on
every part and verification crop).
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from apps.blenderapp.regions import Box, split
from apps.sdk import InvalidArgument, JsonDict
from apps.sdk.atomic_write import write_text_atomic

PLAN_FILE = "blenderapp-plan.json"
MAX_PIXELS = 4096 * 4096
TASK_DEVICES = ("cpu", "gpu")
SCENE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,100}\.(py|blend)")


class PartState(enum.StrEnum):
    PENDING = "pending"
    ASSIGNED = "assigned"
    DONE = "done"


@dataclass
class Part:
    frame: int
    index: int
    box: list[int]
    state: PartState = PartState.PENDING
    subtask_id: str | None = None
    device: str | None = None
    """The device the accepted result says rendered it."""

    @property
    def region(self) -> Box:
        return Box.from_list(self.box)

    @property
    def file_name(self) -> str:
        return f"frame{self.frame:04d}_part{self.index:03d}.png"


@dataclass
class Plan:
    scene: str
    """The scene's resource name in subtask_inputs."""
    frame_start: int
    frames: int
    width: int
    height: int
    samples: int
    parts_per_frame: int
    seed: int
    device: str
    denoise: bool
    parts: list[Part] = field(default_factory=list)
    scene_path: str = ""
    """Where the scene goes in the folder it is rendered from (its name in task_inputs); "" for `scene`."""
    files: dict[str, str] = field(default_factory=dict)
    """The scene's own files (textures, libraries): resource name in subtask_inputs -> path in its folder."""

    @property
    def scene_in_folder(self) -> str:
        """The scene's path in the folder it is rendered from."""
        return self.scene_path or self.scene

    def frame_numbers(self) -> range:
        return range(self.frame_start, self.frame_start + self.frames)

    def parts_of(self, frame: int) -> list[Part]:
        return [part for part in self.parts if part.frame == frame]

    def by_subtask(self, subtask_id: str) -> Part | None:
        return next((part for part in self.parts if part.subtask_id == subtask_id), None)

    def next_pending(self) -> Part | None:
        return next((part for part in self.parts if part.state is PartState.PENDING), None)

    def release(self, subtask_id: str) -> bool:
        part = self.by_subtask(subtask_id)
        if part is None or part.state is not PartState.ASSIGNED:
            return False
        part.state, part.subtask_id = PartState.PENDING, None
        return True

    def save(self, task_root: Path) -> None:
        write_text_atomic(task_root / PLAN_FILE, json.dumps(asdict(self)))

    @classmethod
    def load(cls, task_root: Path) -> Plan:
        data: dict[str, Any] = json.loads((task_root / PLAN_FILE).read_text())
        parts = [
            Part(p["frame"], p["index"], p["box"], PartState(p["state"]), p["subtask_id"], p["device"])
            for p in data.pop("parts")
        ]
        return cls(**data, parts=parts)


def _int(params: JsonDict, name: str, default: int | None, low: int, high: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"task parameter {name!r} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _device(params: JsonDict) -> str:
    value = params.get("device", "cpu")
    if value not in TASK_DEVICES:
        raise InvalidArgument(f"task parameter 'device' must be one of {list(TASK_DEVICES)}, got {value!r}")
    return str(value)


def _flag(params: JsonDict, name: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise InvalidArgument(f"task parameter {name!r} must be true or false, got {value!r}")
    return value


def parse_resolution(value: Any) -> tuple[int, int]:
    """ "WIDTHxHEIGHT" (or [w, h]) -> (w, h), each in [16, 4096]."""
    if isinstance(value, str) and re.fullmatch(r"\d{1,5}x\d{1,5}", value):
        width, height = (int(v) for v in value.split("x"))
    elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        width, height = value
    else:
        raise InvalidArgument(f"task parameter 'resolution' must look like 640x480, got {value!r}")
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise InvalidArgument(f"resolution {width}x{height} is outside 16..4096 per side")
    return width, height


def new_plan(params: JsonDict, scene_file: str, max_subtasks_count: int) -> Plan:
    """Validate the task parameters (InvalidArgument names the bad one) and split every frame: one part is
    one subtask, so frames x parts may not exceed `max_subtasks_count`."""
    known = {"scene", "frames", "frame_start", "resolution", "samples", "parts", "seed", "device", "denoise"}
    unknown = set(params) - known
    if unknown:
        raise InvalidArgument(f"unknown task parameters: {sorted(unknown)}")
    width, height = parse_resolution(params.get("resolution", "320x240"))
    plan = Plan(
        scene=scene_file,
        frame_start=_int(params, "frame_start", 1, 0, 1_000_000),
        frames=_int(params, "frames", 1, 1, 1000),
        width=width,
        height=height,
        samples=_int(params, "samples", 16, 1, 4096),
        parts_per_frame=_int(params, "parts", 4, 1, min(height, 256)),
        seed=_int(params, "seed", 0, 0, 2**31 - 1),
        device=_device(params),
        denoise=_flag(params, "denoise"),
    )
    subtasks = plan.frames * plan.parts_per_frame
    if subtasks > 10_000:
        raise InvalidArgument("frames x parts must be at most 10000")
    if subtasks > max_subtasks_count:
        raise InvalidArgument(
            f"{plan.frames} frames x {plan.parts_per_frame} parts = {subtasks} subtasks, "
            f"more than max_subtasks_count {max_subtasks_count}"
        )
    boxes = split(width, height, plan.parts_per_frame)
    plan.parts = [
        Part(frame, i, box.as_list()) for frame in plan.frame_numbers() for i, box in enumerate(boxes)
    ]
    return plan
