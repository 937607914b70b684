"""Previews: accepted parts placed where their subtask parameters say, for each image app's layout."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from runtime.dashboard.preview import Part, compose, has_preview


def _save(path: Path, pixels: np.ndarray, format: str) -> Path:
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(path, format=format)
    return path


def _decode(png: bytes | None) -> np.ndarray:
    assert png is not None
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def _noise(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_mandelbrot_bands_land_on_their_rows_and_missing_bands_stay_black(tmp_path: Path) -> None:
    width, height = 12, 9
    whole = _noise(height, width, 1)
    bands = [(0, 3), (3, 6), (6, 9)]
    parts = [
        Part(
            {"width": width, "height": height, "row_start": start, "row_end": end},
            _save(tmp_path / f"tile{start}.ppm", whole[start:end], "PPM"),
        )
        for start, end in bands[:2]
    ]
    shown = _decode(compose("mandelbrot", parts))
    assert shown.shape == (height, width, 3)
    assert np.array_equal(shown[:6], whole[:6])
    assert not shown[6:].any()
    parts.append(
        Part(
            {"width": width, "height": height, "row_start": 6, "row_end": 9},
            _save(tmp_path / "t6.ppm", whole[6:], "PPM"),
        )
    )
    assert np.array_equal(_decode(compose("mandelbrot", parts)), whole)


def test_blenderapp_boxes_of_the_first_frame_only(tmp_path: Path) -> None:
    width, height = 10, 8
    first, second = _noise(height, width, 2), _noise(height, width, 3)
    boxes = [[0, 0, 10, 4], [0, 4, 10, 8]]
    parts = []
    for frame, pixels in ((1, first), (2, second)):
        for left, top, right, bottom in boxes:
            params = {"frame": frame, "resolution": [width, height], "box": [left, top, right, bottom]}
            path = _save(tmp_path / f"f{frame}-{top}.png", pixels[top:bottom, left:right], "PNG")
            parts.append(Part(params, path))
    assert np.array_equal(_decode(compose("blenderapp", parts[::-1])), first)


def test_no_preview_for_other_apps_or_without_parts(tmp_path: Path) -> None:
    assert not has_preview("tutorialapp")
    assert compose("tutorialapp", [Part({}, tmp_path / "x")]) is None
    assert compose("mandelbrot", []) is None
    missing = Part({"width": 2, "height": 2, "row_start": 0, "row_end": 2}, tmp_path / "gone.ppm")
    assert compose("mandelbrot", [missing]) is None
