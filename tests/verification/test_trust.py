"""Provider trust over real runs: sampling falls as trust grows, a provider that turns is caught and its
earlier forgeries found by the audit, inflated benchmark claims lower trust, blacklists and restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from runtime.node.provider import DEFAULT_QUEUE, UNJUDGED_PER_SLOT
from runtime.node.trust import TrustPolicy

from .harness import Harness, config
from .test_forgeries import SMALL_TILES, assert_honest_all_accepted, by_id

MANY_TILES = {"width": 32, "height": 120, "parts": 120, "max_iter": 32}
HEAVY_POW = {"input": "speed", "difficulty": 22, "subtasks": 16}
"""Ranges of 262144 nonces, ~1.4e9 fuel each (0.1-0.4 s): long enough for their timing to say
something. The answer lies in the tenth range, so about ten subtasks are computed."""
SEED = 220
"""The sampler's seed in the turncoat test. Its stream for the turncoat (whose id is made from its name)
has its 13th to 31st draws all above 0.2. The turncoat's first forgery, its 31st result, meets its 25th draw
when every earlier result was judged before it, or a few earlier or later ones when the provider's
pipelining left up to 3 results unjudged (a rate of at most 5/27 then): above the rate either way, so the
forgery goes unchecked; about its 39th result is caught. Seed 7 drew 0.177 there: a lag of 2 results
re-executed the first forgery at delivery and left the audit nothing to find."""


def test_a_trusted_provider_that_turns_is_caught_and_its_earlier_forgeries_audited(
    tmp_path: Path, honest_score: float
) -> None:
    # A seeded sampler, one stream per provider id: the turncoat's draws are the same in every run,
    # whichever provider asks first. Its id is the same in every run too (its key is made from its name,
    # harness.named_key): with a fresh random key each run drew otherwise, and about one run in six
    # re-executed its first forgery at delivery, leaving the audit nothing to find. See SEED.
    requestor_config = config(TrustPolicy(probation=5, floor=0.1), seed=SEED)

    async def scenario() -> None:
        async with Harness(tmp_path, requestor_config, honest_score) as h:
            turncoat = h.forger("turncoat", "fuel_high", honest_first=30)
            h.provider("honest")
            tasks = []
            for _ in range(6):
                status = await h.run_task("mandelbrot", MANY_TILES)
                assert status.state == "finished", status.reason
                tasks.append(status.task_id)
                if h.node.verification.trust.get(h.id("turncoat")).forged:
                    break
            journal = by_id(h.journal())
            forged = [journal[s] for s in turncoat.forged]
            assert forged, "the turncoat never turned"
            assert all(e.verdict == "forged" for e in forged), [(e.verdict, e.checked) for e in forged]
            audited = [e for e in forged if e.checked == "audit"]
            assert audited, "every forgery was sampled at delivery: the audit had nothing to find"
            assert all(e.reason.startswith(("audit", "audit after")) for e in audited)
            states = {s.subtask_id: s.state for t in tasks for s in h.node.store.subtasks(task_id=t)}
            assert all(states[e.subtask_id] in ("discarded", "rejected") for e in forged)
            honest_of_turncoat = [journal[s] for s in turncoat.honest_ids if s in journal]
            assert all(e.verdict in ("accepted", "assigned") for e in honest_of_turncoat)
            assert_honest_all_accepted(h, {"turncoat"})
            checked = [e for e in h.journal() if e.provider_id == "honest" and e.verdict == "accepted"]
            sampled = sum(e.checked == "reexecuted" for e in checked)
            assert sampled < len(checked), "a trusted honest provider is still re-executed in full"

    asyncio.run(scenario())


def test_an_inflated_benchmark_claim_lowers_trust(tmp_path: Path, honest_score: float) -> None:
    # A range of HEAVY_POW takes 90-400 ms depending on the machine: count every one of them, since the
    # boaster claims a thousand times its speed and even a short, overhead-heavy sample exposes that.
    # Each provider computes a task of its own, alone: sharing one, the market may hand the faster-looking
    # boaster so many subtasks that the honest provider gets too few to be measured.
    policy = TrustPolicy(speed_min_ms=10)

    async def scenario() -> None:
        async with Harness(tmp_path, config(policy), honest_score) as h:
            h.provider("honest")
            honest_task = await h.run_task("tutorialapp", HEAVY_POW)
            assert honest_task.state == "finished", honest_task.reason
            await h.stop_provider("honest")
            (tmp_path / "boaster").mkdir()
            (tmp_path / "boaster" / "benchmarks.json").write_text(f'{{"wasm": {honest_score * 1000}}}')
            h.provider("boaster")
            boaster_task = await h.run_task("tutorialapp", HEAVY_POW)
            assert boaster_task.state == "finished", boaster_task.reason
            boaster, honest = (
                h.node.verification.trust.get(h.id("boaster")),
                h.node.verification.trust.get(h.id("honest")),
            )
            assert boaster.speed_samples >= 3 and honest.speed_samples >= 3, (boaster, honest)
            (boaster_trust,) = h.node.task_status(boaster_task.task_id).trust
            (honest_trust,) = h.node.task_status(honest_task.task_id).trust
            assert boaster_trust.provider_id == h.id("boaster") and boaster_trust.benchmark_inflated, boaster
            assert boaster_trust.trust == 0.5 and boaster_trust.sample_rate >= 0.5
            assert honest_trust.provider_id == h.id("honest") and not honest_trust.benchmark_inflated, honest
            assert honest_trust.trust == 1.0
            assert_honest_all_accepted(h, set())

    asyncio.run(scenario())


def test_a_blacklisted_forger_gets_no_other_task_even_after_a_restart(
    tmp_path: Path, honest_score: float
) -> None:
    requestor_config = config(TrustPolicy(blacklist=True))

    async def first() -> str:
        async with Harness(tmp_path, requestor_config, honest_score) as h:
            forger = h.forger("forger", "fuel_low")
            h.provider("honest")
            status = await h.run_task("mandelbrot", SMALL_TILES)
            assert status.state == "finished" and forger.forged
            return status.task_id

    async def second(first_task: str) -> None:
        async with Harness(tmp_path, requestor_config, honest_score) as h:
            # The ban is the key's: the same data dir, the same key, the same id after a restart.
            assert h.node.verification.trust.get(h.id("forger")).blacklisted
            assert h.node.verification.excluded(h.id("forger"), first_task)
            h.forger("forger", "fuel_low")
            h.provider("honest")
            status = await h.run_task("mandelbrot", SMALL_TILES)
            assert status.state == "finished", status.reason
            assert {e.provider_id for e in h.journal(status.task_id)} == {"honest"}

    first_task = asyncio.run(first())
    asyncio.run(second(first_task))


def test_a_forger_is_dropped_from_its_task_only_without_blacklisting(
    tmp_path: Path, honest_score: float
) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path, config(), honest_score) as h:
            forger = h.forger("forger", "fuel_low", capacity=1)
            h.provider("honest")
            one = await h.run_task("mandelbrot", SMALL_TILES)
            two = await h.run_task("mandelbrot", SMALL_TILES)
            assert one.state == two.state == "finished"
            for status in (one, two):
                providers = [e.provider_id for e in h.journal(status.task_id) if e.verdict != "assigned"]
                # what it held when its first forgery was judged: its slot, queue and results on their way
                held = 1 + DEFAULT_QUEUE + UNJUDGED_PER_SLOT
                assert providers.count("forger") <= held, "a caught forger kept getting the task's subtasks"
            assert forger.forged
            assert h.node.verification.excluded(h.id("forger"), one.task_id)
            assert not h.node.verification.trust.get(h.id("forger")).blacklisted

    asyncio.run(scenario())
