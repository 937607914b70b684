"""Forging providers against the ladder, over real gRPC, some as real processes: each forgery is caught,
no honest result is ever rejected, and the task's outputs are those of an all-honest run."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from runtime.node.journal import Entry
from runtime.node.trust import TrustPolicy

from .harness import TASK_GUARD_S, Harness, config

TASKAPI = str(Path(sys.executable).with_name("taskapi"))
BIG_TILES = {"width": 1100, "height": 256, "parts": 4, "max_iter": 64}
"""Tiles of 64 x 1100 pixels: over 65536, so the app's Verify re-renders only a sample of rows and pixels."""
SMALL_TILES = {"width": 48, "height": 40, "parts": 40, "max_iter": 64}
POW = {"input": "verification", "difficulty": 10, "subtasks": 16}


def caught(entry: Entry) -> bool:
    return entry.verdict in ("forged", "rejected")


def by_id(entries: list[Entry]) -> dict[str, Entry]:
    return {entry.subtask_id: entry for entry in entries}


def assert_honest_all_accepted(h: Harness, forgers: set[str]) -> None:
    """Every result of an honest provider that got a verdict was accepted."""
    honest = [e for e in h.journal() if e.provider_id not in forgers and e.verdict != "assigned"]
    assert honest, "the honest providers delivered nothing"
    rejected = [(e.subtask_id, e.verdict, e.reason) for e in honest if e.verdict != "accepted"]
    assert not rejected, f"honest results rejected: {rejected}"


def image(outputs_dir: str) -> bytes:
    return (Path(outputs_dir) / "image.png").read_bytes()


def test_a_flipped_pixel_from_a_forging_process_is_caught(tmp_path: Path, honest_score: float) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path, config(), honest_score) as h:
            h.provider("honest-1")
            reference = await h.run_task("mandelbrot", BIG_TILES)
            assert reference.state == "finished", reference.reason
            forger = h.process_forger("forger", "flip", "--capacity", "4")
            await h.joined("forger")
            h.provider("honest-2")
            for _ in range(6):  # it is dropped from each task it is caught in; a new task takes it again
                status = await h.run_task("mandelbrot", BIG_TILES)
                assert status.state == "finished", status.reason
                assert image(status.outputs_dir) == image(reference.outputs_dir)
                if len(forger.forged()) >= 3:
                    break
            forged = forger.forged()
            journal = by_id(h.journal())
            assert len(forged) >= 3, "the forger should have taken some subtasks"
            assert all(caught(journal[s]) for s in forged), [journal[s] for s in forged]
            # Each flip the app's Verify passed (most: it checks a sample of rows) was caught by re-execution.
            by_reexecution = [journal[s] for s in forged if journal[s].verdict == "forged"]
            assert by_reexecution, "every flip was caught by the app's spot checks: none reached re-execution"
            assert all("first difference at byte" in e.reason for e in by_reexecution)
            assert_honest_all_accepted(h, {"forger"})
            trust = h.node.verification.trust.get(h.id("forger"))
            assert trust.forged >= len(by_reexecution) and trust.clean == 0 and trust.share < 1


def test_honest_nine_times_then_cheating_is_caught_on_the_tenth(tmp_path: Path, honest_score: float) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path, config(TrustPolicy(probation=10)), honest_score) as h:
            forger = h.process_forger("turncoat", "fuel_high", "--honest-first", "9")
            await h.joined("turncoat")
            task_id = await asyncio.wait_for(_until_delivered(h, "turncoat", 10), TASK_GUARD_S)
            h.provider("honest")
            status = await asyncio.wait_for(h.node.wait_for_task(task_id), TASK_GUARD_S)
            assert status.state == "finished", status.reason
            entries = [e for e in h.journal(status.task_id) if e.provider_id == "turncoat"]
            judged = [e for e in entries if e.verdict != "assigned"]
            # Verdicts are journalled as verifications end, which with pipelined deliveries need not be
            # the order the turncoat computed in: its forgeries are told apart by their ids.
            forged_ids = forger.forged()
            honest = [e for e in judged if e.subtask_id not in forged_ids]
            forged = [e for e in judged if e.subtask_id in forged_ids]
            assert [e.verdict for e in honest] == ["accepted"] * 9
            assert all(e.checked == "reexecuted" for e in honest)
            assert forged and {e.verdict for e in forged} == {"forged"}, "a forgery was accepted"
            tenth = forged[0]
            assert "claimed fuel" in tenth.reason and tenth.reexec_fuel is not None
            assert tenth.fuel is not None and tenth.fuel > tenth.reexec_fuel
            assert_honest_all_accepted(h, {"turncoat"})
            bills = {b.provider_id: b for b in h.node.task_status(status.task_id).bills}
            assert bills[h.id("turncoat")].subtasks == 9, "forged work must not be billed"
            assert bills[h.id("turncoat")].fuel == sum(e.reexec_fuel or 0 for e in honest)

    asyncio.run(scenario())


async def _until_delivered(h: Harness, provider_id: str, count: int) -> str:
    """Submit a small-tile mandelbrot task; return its id once `provider_id` has `count` verdicts."""
    task_id = await h.node.submit_task("mandelbrot", "wasm", dict(SMALL_TILES), 10_000)
    while True:
        judged = [e for e in h.journal(task_id) if e.provider_id == provider_id and e.verdict != "assigned"]
        if len(judged) >= count:
            return task_id
        await asyncio.sleep(0.05)


def test_less_fuel_than_used_is_a_forgery_and_replay_shows_it(tmp_path: Path, honest_score: float) -> None:
    async def scenario() -> tuple[str, str]:
        async with Harness(tmp_path, config(), honest_score) as h:
            forger = h.forger("underclaims", "fuel_low", honest_first=2)
            h.provider("honest")
            status = await h.run_task("mandelbrot", SMALL_TILES)
            assert status.state == "finished", status.reason
            journal = by_id(h.journal(status.task_id))
            assert forger.forged and all(journal[s].verdict == "forged" for s in forger.forged)
            assert_honest_all_accepted(h, {"underclaims"})
            forged = sorted(forger.forged)[0]
            honest = next(e.subtask_id for e in journal.values() if e.provider_id == "honest")
            return forged, honest

    forged, honest = asyncio.run(scenario())
    data_dir = tmp_path / "requestor"
    differs = subprocess.run(
        [TASKAPI, "replay", forged, "--data-dir", str(data_dir)], capture_output=True, text=True, check=False
    )
    assert differs.returncode == 1, differs.stdout + differs.stderr
    assert "fuel differs" in differs.stdout and "output differs" not in differs.stdout
    exact = subprocess.run(
        [TASKAPI, "replay", honest, "--data-dir", str(data_dir)], capture_output=True, text=True, check=False
    )
    assert exact.returncode == 0, exact.stdout + exact.stderr
    assert "bit-exact" in exact.stdout


def test_replay_names_the_first_differing_byte(tmp_path: Path, honest_score: float) -> None:
    async def scenario() -> str:
        async with Harness(tmp_path, config(), honest_score) as h:
            forger = h.forger("flipper", "flip", seed=3)
            h.provider("honest")
            status = await h.run_task("mandelbrot", SMALL_TILES)
            assert status.state == "finished", status.reason
            return sorted(forger.forged)[0]

    forged = asyncio.run(scenario())
    replay = subprocess.run(
        [TASKAPI, "replay", forged, "--data-dir", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert replay.returncode == 1, replay.stderr
    report = json.loads(replay.stdout)
    assert report["fuel_difference"] == 0 and not report["output_equal"]
    assert report["claimed_file_present"] and report["first_difference"] is not None
    (claimed,) = (tmp_path / "requestor" / "app-work").rglob(f"subtask_outputs/{forged}/*")
    header = b"\n".join(claimed.read_bytes().split(b"\n", 3)[:3])
    assert report["first_difference"] > len(header), "the flipped byte is a pixel, past the PPM header"


def test_copying_another_subtasks_output_is_caught(tmp_path: Path, honest_score: float) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path, config(), honest_score) as h:
            copier = h.forger("copier", "copy", capacity=2)
            h.provider("honest")
            for app, params in (("mandelbrot", SMALL_TILES), ("tutorialapp", POW)):
                status = await h.run_task(app, params)
                assert status.state == "finished", status.reason
            journal = by_id(h.journal())
            assert copier.forged and all(caught(journal[s]) for s in copier.forged)
            assert_honest_all_accepted(h, {"copier"})

    asyncio.run(scenario())


def test_claiming_nothing_found_without_the_work_is_caught(tmp_path: Path, honest_score: float) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path, config(), honest_score) as h:
            lazy = h.forger("lazy", "lazy", capacity=4)
            h.provider("honest")
            status = await h.run_task("tutorialapp", {**POW, "difficulty": 12})
            assert status.state == "finished", status.reason
            journal = by_id(h.journal(status.task_id))
            assert lazy.forged and all(caught(journal[s]) for s in lazy.forged)
            assert_honest_all_accepted(h, {"lazy"})

    asyncio.run(scenario())
