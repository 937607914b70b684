"""A scene's own files (image textures, linked libraries) next to it, where Blender's relative paths
(`//tex.png`, `//textures/wood.png`) look for them.

On the requestor, every file of `task_inputs/` other than the scene is a *scene file*: it is copied to
`subtask_inputs/` under a resource name of its own (`file0001`, ...) and every NextSubtask names it, so the
node ships it to the provider's `subtask_inputs/` (Golem's task-dir contract). The subtask parameters map
each resource name to the file's path relative to the scene's folder (its name in `task_inputs/`).

Where a scene is rendered (a provider's Compute, the requestor's verification), `place_scene` builds a fresh
folder holding the scene at its own relative path and every scene file at its path, hard-linked from
`subtask_inputs/` (copied where a link is refused), so the paths Blender stored in the .blend resolve
exactly as they did on the user's machine. A path from the subtask parameters that could leave that
folder (absolute, `..`) or land on another file's place is refused with InvalidArgument naming it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from apps.sdk import InvalidArgument, RequestorTaskDir
from apps.sdk.sandboxed_files import UnsafePath, copy_file, relative_parts
from apps.sdk.workdir import check_id

MAX_SCENE_FILES = 1000
SCENE_FOLDER = ".scene"
"""The folder a scene is placed in, inside a subtask's or a verification's scratch dir: its leading dot
keeps it apart from every output name (an id never starts with a punctuation mark)."""


def scene_path(value: str) -> PurePosixPath:
    """`value` as a path that stays inside the scene's folder; InvalidArgument naming it otherwise."""
    try:
        return PurePosixPath(*relative_parts(value))
    except UnsafePath as exc:
        raise InvalidArgument(f"scene file path {value!r}: {exc.problem}") from None


def share_inputs(task_dir: RequestorTaskDir, scene: PurePosixPath) -> dict[str, str]:
    """Copy every file of `task_inputs/` but `scene` to `subtask_inputs/` as a resource; resource name ->
    path relative to the scene's folder. Files are read without following links: a link or a special file
    in `task_inputs/` is refused (InvalidArgument), as is a scene more than MAX_SCENE_FILES files need."""
    names = sorted(
        PurePosixPath(path.relative_to(task_dir.task_inputs).as_posix())
        for path in task_dir.task_inputs.rglob("*")
        if not path.is_dir() or path.is_symlink()
    )
    names = [name for name in names if name != scene]
    if len(names) > MAX_SCENE_FILES:
        raise InvalidArgument(f"task_inputs holds {len(names)} files; a scene may use {MAX_SCENE_FILES}")
    files: dict[str, str] = {}
    for index, name in enumerate(names, start=1):
        resource = f"file{index:04d}"
        try:
            copy_file(task_dir.task_inputs, name, task_dir.subtask_inputs / resource)
        except UnsafePath as exc:
            raise InvalidArgument(f"task input {exc}") from None
        files[resource] = name.as_posix()
    return files


def check_files(value: Any) -> dict[str, PurePosixPath]:
    """The subtask parameter `files` (resource name -> path in the scene's folder), checked: InvalidArgument
    naming a bad resource name or path, or two files given the same place."""
    if not isinstance(value, dict) or len(value) > MAX_SCENE_FILES:
        raise InvalidArgument(
            f"bad files {str(value)[:200]!r}: an object of at most {MAX_SCENE_FILES} entries"
        )
    files: dict[str, PurePosixPath] = {}
    for resource, path in value.items():
        try:
            check_id("scene file resource", resource)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        if not isinstance(path, str):
            raise InvalidArgument(f"bad path {path!r} for scene file {resource}: a string")
        files[resource] = scene_path(path)
    return files


def place_scene(
    inputs: Path, scene: str, path: PurePosixPath, files: dict[str, PurePosixPath], scratch: Path
) -> Path:
    """Make `scratch/SCENE_FOLDER` hold the resource `scene` at `path` and each scene file at its path, all
    taken from `inputs` (a task's `subtask_inputs/`); the placed scene's path. InvalidArgument for a resource
    that is missing or for two files given the same place (or one a folder of another)."""
    folder = scratch / SCENE_FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for resource, relative in [(scene, path), *files.items()]:
        target = folder.joinpath(*relative.parts)
        source = inputs / resource
        if not source.is_file():
            raise InvalidArgument(f"scene file {resource} ({relative}) was not delivered")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(source, target)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise InvalidArgument(f"two scene files are given the place {relative}") from None
    return folder.joinpath(*path.parts)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:  # another file system, or a link the kernel refuses (protected_hardlinks)
        with source.open("rb") as reading, target.open("xb") as writing:
            shutil.copyfileobj(reading, writing)
