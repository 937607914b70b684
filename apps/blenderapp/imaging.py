"""PNG frames as numpy arrays: load, save, merge parts, and compare images (PSNR, SSIM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, PngImagePlugin

from apps.blenderapp.regions import Box

Pixels = NDArray[np.uint8]

SSIM_WINDOW = 7
DEVICE_KEY = "taskapi:device"
"""The PNG text entry naming the device(s) that rendered a part or a frame."""
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def load_png(path: Path) -> Pixels:
    """An 8-bit RGB image as an H x W x 3 array (ValueError if it is not a readable image)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"{path.name} is not a readable image: {exc}") from exc


def save_png(pixels: Pixels, path: Path, text: dict[str, str] | None = None) -> None:
    """Write `pixels` as an 8-bit RGB PNG, with `text` as its text entries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    Image.fromarray(pixels, "RGB").save(path, format="PNG", pnginfo=info)


def png_text(path: Path) -> dict[str, str]:
    """The text entries of the PNG at `path` (empty when it has none or is not a readable PNG)."""
    try:
        with Image.open(path) as image:
            entries = getattr(image, "text", {})
            return {str(key): str(value) for key, value in entries.items()}
    except (OSError, SyntaxError):
        return {}


def merge(width: int, height: int, parts: list[tuple[Box, Pixels]]) -> Pixels:
    """One frame from its parts; each part's pixels must have its box's size."""
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    for box, pixels in parts:
        if pixels.shape != (box.height, box.width, 3):
            raise ValueError(f"part {box} has shape {pixels.shape}")
        frame[box.top : box.bottom, box.left : box.right] = pixels
    return frame


def psnr(a: Pixels, b: Pixels) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical images)."""
    error = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if error == 0 else 10 * np.log10(255.0**2 / error)


def _box_mean(values: NDArray[np.float64], size: int) -> NDArray[np.float64]:
    """Mean over every size x size window (valid windows only), via summed-area tables."""
    table = np.pad(values.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]
    result: NDArray[np.float64] = sums / (size * size)
    return result


def ssim(a: Pixels, b: Pixels, window: int = SSIM_WINDOW) -> float:
    """Mean structural similarity of the luma of two equally sized images (uniform windows)."""
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} vs {b.shape}")
    weights = np.array([0.299, 0.587, 0.114])
    x = a.astype(np.float64) @ weights
    y = b.astype(np.float64) @ weights
    size = min(window, *x.shape)
    mx, my = _box_mean(x, size), _box_mean(y, size)
    vx = _box_mean(x * x, size) - mx * mx
    vy = _box_mean(y * y, size) - my * my
    cov = _box_mean(x * y, size) - mx * my
    index = ((2 * mx * my + _C1) * (2 * cov + _C2)) / ((mx * mx + my * my + _C1) * (vx + vy + _C2))
    return float(index.mean())
