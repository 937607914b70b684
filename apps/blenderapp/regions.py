"""Pixel boxes of a frame, and splitting a frame into parts (horizontal strips of whole rows)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    """Pixels [left, right) x [top, bottom), rows counted from the top of the frame."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def as_list(self) -> list[int]:
        return [self.left, self.top, self.right, self.bottom]

    @classmethod
    def from_list(cls, values: list[int]) -> Box:
        left, top, right, bottom = (int(v) for v in values)
        return cls(left, top, right, bottom)

    def contains(self, other: Box) -> bool:
        return (
            self.left <= other.left
            and self.top <= other.top
            and other.right <= self.right
            and other.bottom <= self.bottom
        )

    def relative(self, inner: Box) -> Box:
        """`inner` in this box's own coordinates."""
        return Box(
            inner.left - self.left, inner.top - self.top, inner.right - self.left, inner.bottom - self.top
        )


def split(width: int, height: int, parts: int) -> list[Box]:
    """`parts` strips of whole rows covering the frame top to bottom, heights differing by at most one."""
    if not 1 <= parts <= height:
        raise ValueError(f"parts must be in [1, {height}] for a frame {height} pixels high, got {parts}")
    edges = [round(i * height / parts) for i in range(parts + 1)]
    return [Box(0, edges[i], width, edges[i + 1]) for i in range(parts)]
