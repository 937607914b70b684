"""Redundancy with a quorum (runtime/node/quorum.py) over real gRPC with real wasm providers.

A build of mandelbrot whose descriptor asks for `redundancy` (quorum 2, one referee) and a requestor that
re-executes nothing: the quorum alone has to catch what the app's spot-checking Verify lets through.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from pathlib import Path

from protos import node_pb2 as npb
from runtime.appmanager import AppManager, Redundancy
from runtime.node.journal import Entry
from runtime.node.quorum import Outcome, agree, decide
from runtime.node.requestor import RequestorConfig
from runtime.node.states import SubtaskState
from runtime.node.store import SubtaskRow
from runtime.node.verification import VerificationConfig

from .forger import ForgingRunner
from .harness import Harness
from .test_forgeries import by_id

MANDELBROT = Path(__file__).resolve().parents[2] / "wasm_apps" / "mandelbrot"
TILES = {"width": 48, "height": 24, "parts": 12, "max_iter": 64}
NO_REEXECUTION = RequestorConfig(verification=VerificationConfig(reexecute=False))


def add_quorum_build(root: Path, redundancy: dict[str, object]) -> str:
    """Add and enable `mandelbrot-quorum`: the shipped module, its descriptor asking for redundancy."""
    folder = root / "mandelbrot-quorum"
    folder.mkdir()
    descriptor = json.loads((MANDELBROT / "descriptor.json").read_text())
    descriptor.update(name="mandelbrot-quorum", redundancy=redundancy)
    (folder / "descriptor.json").write_text(json.dumps(descriptor))
    shutil.copyfile(MANDELBROT / descriptor["prerequisites"]["module"], folder / "mandelbrot.wasm")
    return AppManager().add(folder, enable=True).name


async def run_with_forgers(
    tmp_path: Path, forgers: dict[str, str]
) -> tuple[npb.TaskStatus, dict[str, ForgingRunner], dict[str, Entry], dict[str, int]]:
    """Two honest providers make a reference image of the plain build; then `forgers` (name -> strategy)
    join and the quorum build renders the same image. The task must finish with the reference's bytes.
    Returns its status, the forgers' runners, its journal and the forgeries trust counted per forger."""
    app = add_quorum_build(tmp_path, {"quorum": 2, "referees": 1})
    async with Harness(tmp_path / "run", NO_REEXECUTION) as h:
        h.provider("honest-a")
        h.provider("honest-b")
        reference = await h.run_task("mandelbrot", TILES)
        assert reference.state == "finished", reference.reason
        runners = {name: h.forger(name, strategy) for name, strategy in forgers.items()}
        status = await h.run_task(app, TILES)
        assert status.state == "finished", status.reason
        image = (Path(status.outputs_dir) / "image.png").read_bytes()
        assert image == (Path(reference.outputs_dir) / "image.png").read_bytes()
        counted = {name: h.node.verification.trust.get(h.id(name)).forged for name in forgers}
        return status, runners, by_id(h.journal(status.task_id)), counted


def honest_verdicts(journal: dict[str, Entry]) -> set[str]:
    judged = [e for e in journal.values() if e.provider_id.startswith("honest") and e.verdict != "assigned"]
    assert judged, "the honest providers delivered nothing"
    return {e.verdict for e in judged}


def test_an_outvoted_forger_is_caught_by_the_referee(tmp_path: Path) -> None:
    status, runners, journal, counted = asyncio.run(run_with_forgers(tmp_path, {"forger": "flip"}))
    forger = runners["forger"]
    assert forger.forged, "the forger was never given a copy"
    assert {journal[s].verdict for s in forger.forged} == {"forged"}
    assert honest_verdicts(journal) == {"accepted"}
    # every tile agreed by two results (the primary's own may have been outvoted)
    assert status.subtasks_by_state["accepted"] >= 2 * TILES["parts"] - 1
    assert counted["forger"] == len(forger.forged)


def test_colluders_agreeing_on_a_forgery_are_rejected_and_the_honest_never_blamed(tmp_path: Path) -> None:
    _, colluders, journal, _ = asyncio.run(
        run_with_forgers(tmp_path, {"colluder-a": "invert", "colluder-b": "invert"})
    )
    assert any(runner.forged for runner in colluders.values()), "no colluder was given a copy"
    for name, runner in colluders.items():
        verdicts = {journal[s].verdict for s in runner.forged}
        assert verdicts <= {"forged", "rejected"}, (name, verdicts)
    assert honest_verdicts(journal) <= {"accepted", "inconclusive"}


def row(subtask_id: str, state: str, sha: str | None = None) -> SubtaskRow:
    return SubtaskRow(
        subtask_id, "t", SubtaskState(state), "p", "{}", [], 0, "tile.ppm" if sha else None, 0, 0, sha
    )


def test_decide_waits_then_needs_a_referee_then_agrees_or_gives_up() -> None:
    spec = Redundancy(quorum=2, referees=1)

    def outcome(*copies: SubtaskRow) -> Outcome:
        return decide(spec, copies, lambda r: Path(r.subtask_id)).outcome

    assert outcome(row("p", "delivered", "x"), row("r", "assigned")) is Outcome.WAIT
    assert outcome(row("p", "delivered", "x"), row("r", "wanted")) is Outcome.WAIT
    assert outcome(row("p", "delivered", "x"), row("r", "delivered", "y")) is Outcome.REFEREE
    three = (row("p", "delivered", "x"), row("r", "delivered", "y"), row("q", "delivered", "y"))
    decision = decide(spec, three, lambda r: Path(r.subtask_id))
    assert (decision.outcome, decision.agreeing, decision.forged) == (Outcome.AGREED, ("r", "q"), ("p",))
    apart = (row("p", "delivered", "x"), row("r", "delivered", "y"), row("q", "delivered", "z"))
    assert outcome(*apart) is Outcome.NO_QUORUM


def test_pixels_agree_within_the_psnr_bound_and_never_across_sizes_or_garbage(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    images = {
        "same": base,
        "one_level_off": np.clip(base.astype(int) + 1, 0, 255).astype(np.uint8),  # PSNR ~ 48 dB
        "noise": rng.integers(0, 256, base.shape, dtype=np.uint8),
        "cropped": base[:, :30],
    }
    for name, pixels in {"base": base, **images}.items():
        Image.fromarray(pixels, "RGB").save(tmp_path / f"{name}.png")
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG not really")
    spec = Redundancy(quorum=2, compare="pixels", min_psnr=40)

    def delivered(name: str) -> SubtaskRow:
        digest = hashlib.sha256((tmp_path / f"{name}.png").read_bytes()).hexdigest()
        return SubtaskRow(name, "t", SubtaskState.DELIVERED, "p", "{}", [], 0, "frame.png", 0, 0, digest)

    def path(copy: SubtaskRow) -> Path:
        return tmp_path / f"{copy.subtask_id}.png"

    agreement = {name: agree(spec, delivered("base"), delivered(name), path) for name in [*images, "garbage"]}
    assert agreement == {
        "same": True,
        "one_level_off": True,
        "noise": False,
        "cropped": False,
        "garbage": False,
    }
    assert not agree(
        spec.model_copy(update={"compare": "bytes"}), delivered("base"), delivered("one_level_off"), path
    )
