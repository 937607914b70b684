"""Live previews of image tasks: the accepted parts of a render placed on one canvas, as they arrive.

Each image app says, from a subtask's parameters, how big the whole picture is and which box of it the
subtask's result file covers. Unknown apps get no preview.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image


@dataclass(frozen=True)
class Placement:
    """The picture's size and where a part goes in it: [left, top, right, bottom] in pixels."""

    width: int
    height: int
    box: tuple[int, int, int, int]


def _mandelbrot(params: dict[str, Any]) -> Placement:
    width, height = int(params["width"]), int(params["height"])
    return Placement(width, height, (0, int(params["row_start"]), width, int(params["row_end"])))


def _blenderapp(params: dict[str, Any]) -> Placement:
    width, height = (int(v) for v in params["resolution"])
    left, top, right, bottom = (int(v) for v in params["box"])
    return Placement(width, height, (left, top, right, bottom))


LAYOUTS: dict[str, Callable[[dict[str, Any]], Placement]] = {
    "mandelbrot": _mandelbrot,
    "blenderapp": _blenderapp,
}
"""Image apps by name: where a subtask's result goes. A task of several frames previews its first."""


def has_preview(app: str) -> bool:
    return app in LAYOUTS


@dataclass(frozen=True)
class Part:
    """An accepted subtask's parameters and its result file."""

    params: dict[str, Any]
    result: Path


def compose(app: str, parts: list[Part]) -> bytes | None:
    """A PNG of the accepted parts in place (black where none arrived yet); None without any part."""
    layout = LAYOUTS.get(app)
    frames = [part.params["frame"] for part in parts if isinstance(part.params.get("frame"), int)]
    first = min(frames, default=None)
    shown = [part for part in parts if part.params.get("frame") == first and part.result.is_file()]
    if layout is None or not shown:
        return None
    canvas: Image.Image | None = None
    for part in shown:
        where = layout(part.params)
        if canvas is None:
            canvas = Image.new("RGB", (where.width, where.height))
        with Image.open(part.result) as tile:
            canvas.paste(tile.convert("RGB"), where.box[:2])
    assert canvas is not None
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()
