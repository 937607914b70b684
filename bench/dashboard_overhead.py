"""Dashboard overhead: a trivial tutorialapp run split 400 ways, without the dashboard and with a real
headless Chromium watching it (logged in, on the task's page: its subtask grid redrawn from server-sent
events).

Same process layout as `taskapi run` (requestor and 2 providers in one process, real gRPC over loopback,
wasm). The app stops handing out ranges past the first valid nonce, so somewhat fewer than 400 subtasks are
accepted, the same number in every run. Runs alternate (plain, watched, plain, watched, ...) so drift in the
machine's load hits both alike. Prints each run's wall time (providers' start, submission and the
whole task, until run_embedded returns; the browser's launch and login are left out) and the ratio of
the medians (goal: <= 1.05).

    python bench/dashboard_overhead.py [--subtasks 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import async_playwright

from runtime.dashboard.requestor_app import start_requestor_dashboard
from runtime.node.embedded import Attach, run_embedded
from runtime.node.requestor import RequestorNode
from runtime.node.runners import builtin_whitelist, runners_for

CHROMIUM = "/usr/bin/chromium"
TRIVIAL = {"input": "bench-trivial-148", "difficulty": 12}
"""As bench/node_throughput.py: 4096 nonces in all, so each subtask searches only a few."""


def plain(ready: list[float]) -> Attach:
    """Nothing beside the node; notes when the run proper begins (as `watched` does)."""

    @contextlib.asynccontextmanager
    async def attach(node: RequestorNode, token: str) -> AsyncIterator[object]:
        ready.append(time.perf_counter())
        yield None

    return attach


def watched(seen: list[int], ready: list[float]) -> Attach:
    """The dashboard on a free loopback port, and a browser that logs in and watches the task's page.
    The run proper begins once the browser is logged in (its start is not the dashboard's cost)."""

    @contextlib.asynccontextmanager
    async def attach(node: RequestorNode, token: str) -> AsyncIterator[object]:
        server = await start_requestor_dashboard(
            node, "127.0.0.1", 0, token, reports_dir=Path("/nonexistent")
        )
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = await browser.new_page()
            await page.goto(server.url + "login")
            await page.fill("#token", token)
            await page.click("button[type=submit]")

            async def follow() -> None:
                await page.wait_for_selector("#tasks a", timeout=120_000)  # the task, once submitted
                await page.click("#tasks a")
                await page.wait_for_selector("#subtasks", timeout=120_000)
                seen.append(1)

            await page.wait_for_selector("#view h1")
            ready.append(time.perf_counter())
            following = asyncio.create_task(follow())
            try:
                yield server
            finally:
                following.cancel()
                with contextlib.suppress(BaseException):
                    await following
                await browser.close()
                await server.close()

    return attach


async def one_run(subtasks: int, watch: bool) -> tuple[float, int]:
    seen: list[int] = []
    ready: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as work:
        status = await run_embedded(
            "tutorialapp",
            "wasm",
            {**TRIVIAL, "subtasks": subtasks},
            data_dir=Path(work),
            providers=2,
            capacity=1,
            runners=lambda: runners_for(["wasm"]),
            whitelist=builtin_whitelist(),
            attach=watched(seen, ready) if watch else plain(ready),
        )
        wall_s = time.perf_counter() - ready[0]
    accepted = status.subtasks_by_state.get("accepted", 0)
    if status.state != "finished":
        raise SystemExit(f"run ended {status.state} with {accepted} accepted: {status.reason}")
    if watch and not seen:
        raise SystemExit("the browser never reached the task's page: nothing was watched")
    return wall_s, accepted


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subtasks", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    times: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(args.rounds):
        for watch in (False, True):
            wall_s, accepted = asyncio.run(one_run(args.subtasks, watch))
            times[watch].append(wall_s)
            label = "watched" if watch else "plain"
            print(
                f"round {round_ + 1}: {label:<8} {accepted} subtasks accepted in {wall_s:6.2f} s", flush=True
            )
    plain, watched_s = statistics.median(times[False]), statistics.median(times[True])
    print(
        f"median plain {plain:.2f} s, watched {watched_s:.2f} s: ratio {watched_s / plain:.3f} (goal <= 1.05)"
    )


if __name__ == "__main__":
    main()
