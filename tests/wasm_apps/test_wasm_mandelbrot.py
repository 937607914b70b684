"""mandelbrot.wasm: tiles rendered by providers, verified by re-rendering, merged into one PNG."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from environments.wasm import WasmConfig
from tests.wasm_apps.wasm_harness import JsonDict, WasmTask, compute
from wasm_apps import module_path
from wasm_apps.run import ModuleHost

VIEW = {"width": 61, "height": 37, "max_iter": 200, "center_x": -0.6, "center_y": 0.1, "zoom": 1.3}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleHost]:
    config = WasmConfig(cache_dir=tmp_path_factory.mktemp("wasm-cache") / "cache", max_parallel=1)
    with ModuleHost(module_path("mandelbrot"), config) as host:
        yield host


@pytest.fixture
def task(host: ModuleHost, tmp_path: Path) -> WasmTask:
    return WasmTask(host, tmp_path)


def read_png(path: Path) -> tuple[int, int, bytes]:
    """Width, height and RGB bytes of an 8-bit RGB PNG whose rows all use filter 0; checks every CRC."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = 1 + 3 * width
    assert len(raw) == height * stride
    assert all(raw[y * stride] == 0 for y in range(height))
    return width, height, b"".join(raw[y * stride + 1 : (y + 1) * stride] for y in range(height))


def read_ppm(path: Path) -> tuple[int, int, bytes]:
    magic, size, depth, pixels = path.read_bytes().split(b"\n", 3)
    width, height = map(int, size.split())
    assert (magic, depth) == (b"P6", b"255") and len(pixels) == 3 * width * height
    return width, height, pixels


def render(task: WasmTask, params: JsonDict, max_subtasks: int = 100) -> Path:
    assert task.create(params, max_subtasks) == {"min_memory_mib": 64}  # descriptor.json says 64
    task.run_to_end()
    return task.task_dir / "task_outputs" / "image.png"


def test_the_image_is_the_same_whatever_the_split(host: ModuleHost, tmp_path: Path) -> None:
    images = []
    for parts, max_subtasks in [(1, 100), (3, 100), (7, 100), (37, 100), (12, 5)]:
        task = WasmTask(host, tmp_path / f"parts-{parts}-{max_subtasks}")
        image = render(task, {**VIEW, "parts": parts}, max_subtasks)
        plan = json.loads((task.state_dir / "mandelbrot-plan.json").read_text())
        assert len(plan["tiles"]) == min(parts, max_subtasks)
        images.append(image.read_bytes())
    assert all(image == images[0] for image in images)
    first = tmp_path / "parts-1-100" / "requestor" / "task-1"
    width, height, pixels = read_png(first / "task_outputs" / "image.png")
    assert (width, height) == (61, 37)
    assert len(set(pixels[i : i + 3] for i in range(0, len(pixels), 3))) > 20  # a picture, not a fill


def test_the_image_is_the_tiles_stacked(task: WasmTask) -> None:
    image = render(task, {**VIEW, "parts": 3})
    tiles = [read_ppm(task.state_dir / "mandelbrot-tiles" / f"{i}.ppm") for i in range(3)]
    assert [t[1] for t in tiles] == [12, 12, 13]
    assert read_png(image)[2] == b"".join(t[2] for t in tiles)


def test_a_wide_image_spans_several_deflate_blocks(task: WasmTask) -> None:
    """Rows of 49153 bytes fill stored deflate blocks (65535 bytes) unevenly: rows span IDAT chunks."""
    image = render(task, {"width": 16_384, "height": 3, "parts": 3, "max_iter": 4})
    width, height, pixels = read_png(image)
    assert (width, height, len(pixels)) == (16_384, 3, 16_384 * 3 * 3)
    tiles = [read_ppm(task.state_dir / "mandelbrot-tiles" / f"{i}.ppm")[2] for i in range(3)]
    assert pixels == b"".join(tiles)


def test_the_set_is_black_and_the_outside_is_not(task: WasmTask) -> None:
    image = render(task, {"width": 9, "height": 9, "parts": 2})  # centre -0.5: inside the main cardioid
    _, _, pixels = read_png(image)
    centre = (4 * 9 + 4) * 3
    assert pixels[centre : centre + 3] == b"\0\0\0"
    assert pixels[0:3] != b"\0\0\0"


def test_the_same_tile_renders_to_the_same_bytes_and_fuel(host: ModuleHost, tmp_path: Path) -> None:
    params = {**VIEW, "row_start": 3, "row_end": 20}
    runs = [compute(host, tmp_path / side / "t", "s", params) for side in ("a", "b")]
    assert runs[0][0].fuel == runs[1][0].fuel > 0
    assert runs[0][1] is not None and runs[1][1] is not None and runs[0][1].name == "tile.ppm"
    assert runs[0][1].read_bytes() == runs[1][1].read_bytes()


def noise(tile: bytearray, header: int) -> None:
    for i in range(header, len(tile), 97):
        tile[i] ^= 0x01


def shift(tile: bytearray, header: int) -> None:
    tile[header:] = tile[header + 3 :] + tile[header : header + 3]


def forge(tile: bytearray, header: int) -> None:
    tile[header:] = bytes(len(tile) - header)


def one_pixel(tile: bytearray, header: int) -> None:
    tile[header + 3 * 5] ^= 0x80


def wrong_header(tile: bytearray, header: int) -> None:
    tile[0:2] = b"P3"


def truncate(tile: bytearray, header: int) -> None:
    del tile[-3:]


DAMAGE: dict[str, tuple[Callable[[bytearray, int], None], str]] = {
    "noised": (noise, "differs from the re-render"),
    "shifted": (shift, "differs from the re-render"),
    "forged": (forge, "differs from the re-render"),
    "one pixel": (one_pixel, "differs from the re-render"),
    "wrong header": (wrong_header, "header is not that of a"),
    "truncated": (truncate, "bytes, a 61x"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_tiles_are_rejected_and_handed_out_again(task: WasmTask, damage: str) -> None:
    change, reason = DAMAGE[damage]
    task.create({**VIEW, "parts": 2})

    def tamper(subtask_id: str, delivered: Path) -> None:
        tile = bytearray(delivered.read_bytes())
        change(tile, len(b"P6\n61 18\n255\n"))
        delivered.write_bytes(bytes(tile))

    step = task.run_one(tamper)
    assert step is not None
    verdict = step[1]
    assert verdict["result"] == "FAILURE" and reason in verdict["reason"], verdict
    plan = json.loads((task.state_dir / "mandelbrot-plan.json").read_text())
    assert plan["tiles"][0] == {"state": "pending", "subtask_id": None}
    task.run_to_end()
    assert read_png(task.task_dir / "task_outputs" / "image.png")[:2] == (61, 37)


def test_large_tiles_are_checked_on_a_sample(task: WasmTask) -> None:
    """A 300x240 tile is above the whole-tile threshold: sampled rows and pixels still catch noise."""
    task.create({"width": 300, "height": 240, "parts": 1, "max_iter": 64})

    def tamper(subtask_id: str, delivered: Path) -> None:
        tile = bytearray(delivered.read_bytes())
        noise(tile, len(b"P6\n300 240\n255\n"))
        delivered.write_bytes(bytes(tile))

    step = task.run_one(tamper)
    assert step is not None and step[1]["result"] == "FAILURE", step
    task.run_to_end()
    assert read_png(task.task_dir / "task_outputs" / "image.png")[:2] == (300, 240)


def test_a_tile_of_another_band_is_rejected(task: WasmTask) -> None:
    task.create({**VIEW, "parts": 2})
    first, second = task.next_subtask(), task.next_subtask()
    assert first[1] is not None and second[1] is not None
    own = task.compute(first[0], first[1]["params"])
    other_params = {**second[1]["params"], "row_start": 0, "row_end": 18}  # same size, rows shifted by one
    other_params["center_y"] = other_params["center_y"] + 3 / (1.3 * 37)
    task.deliver(first[0], task.compute(second[0], other_params))
    verdict = task.verify(first[0])
    assert verdict["result"] == "FAILURE" and "differs from the re-render" in verdict["reason"]
    assert own.read_bytes() != (task.task_dir / "subtask_outputs" / first[0] / "tile.ppm").read_bytes()


def test_discard_and_abort_return_tiles_and_drop_the_image(task: WasmTask) -> None:
    image = render(task, {**VIEW, "parts": 3})
    before = image.read_bytes()
    plan = json.loads((task.state_dir / "mandelbrot-plan.json").read_text())
    done = plan["tiles"][1]["subtask_id"]
    assert task.call("discard_subtasks", subtask_ids=[done, "nope"]) == {"discarded_subtask_ids": [done]}
    assert not image.exists()
    assert task.call("has_pending_subtasks") == {"has_pending_subtasks": True}
    subtask_id, subtask = task.next_subtask()
    assert subtask is not None and subtask["params"]["row_start"] == 12
    assert task.call("abort_subtask", subtask_id=subtask_id) == {}
    assert task.verify(subtask_id)["reason"] == f"subtask {subtask_id} holds no assigned tile"
    task.run_to_end()
    assert image.read_bytes() == before
    assert task.call("next_subtask", subtask_id="late", opaque_node_id="n") == {"subtask": None}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"height": 10}, "width"),
        ({"width": 0, "height": 10}, "width"),
        ({"width": 10, "height": "10"}, "height"),
        ({"width": 10, "height": 20000}, "height"),
        ({"width": 10, "height": 10, "parts": 11}, "parts"),
        ({"width": 10, "height": 10, "parts": 0}, "parts"),
        ({"width": 10, "height": 10, "max_iter": 0}, "max_iter"),
        ({"width": 10, "height": 10, "max_iter": 1.5}, "max_iter"),
        ({"width": 10, "height": 10, "center_x": 100}, "center_x"),
        ({"width": 10, "height": 10, "center_y": None}, "center_y"),
        ({"width": 10, "height": 10, "zoom": 0}, "zoom"),
        ({"width": 10, "height": 10, "zoom": -2.5}, "zoom"),
        ({"width": 10, "height": 10, "zoom": 1e999}, "zoom"),
        ({"width": 10, "height": 10, "colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_refused_naming_them(task: WasmTask, params: JsonDict, named: str) -> None:
    reply = task.create(params)
    assert reply["error"]["code"] == "INVALID_ARGUMENT"
    assert repr(named) in reply["error"]["message"], reply


def test_compute_refuses_rows_outside_the_image(host: ModuleHost, tmp_path: Path) -> None:
    params = {**VIEW, "row_start": 30, "row_end": 38}
    result, _ = compute(host, tmp_path / "t", "s", params)
    assert result.error is not None and "'row_end'" in result.error["message"]


def test_benchmark(host: ModuleHost) -> None:
    reply = host.run("benchmark", {}).reply
    assert reply is not None and reply["score"] > 0
