"""The verification ladder against honest and forging providers: what it catches and what it costs.

One requestor and in-process providers over real gRPC (4 honest; forgers that flip a byte, copy another
subtask's output, turn after 30 honest results, under-claim fuel after 60, claim "nothing found" after
20, and one that over-claims fuel on 30% of its results after 80), running tutorialapp and mandelbrot
tasks until the goal of judged results is met. Prints:

- forged results (the forgers' own record: bytes or fuel differ from the honest run) and how each was
  caught: the app's Verify, re-execution at delivery, the audit of a caught provider (while its task ran,
  or after it ended, when the forged work was already in the task's outputs), or not at all;
- honest results rejected (goal 0);
- re-execution overhead: re-executed fuel / accepted fuel of honest providers, overall and once they are
  trusted (after `probation / floor` results, where the rate sits at the floor; goal <= 10%).

    python bench/verification_overhead.py [--subtasks 1500] [--seed 1] [--floor 0.05] [--probation 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.node.trust import TrustPolicy  # noqa: E402
from tests.verification.harness import measure_benchmark  # noqa: E402
from tests.verification.mix import CHEATERS, HONEST, INTERMITTENT, describe, run_mix  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    score = await measure_benchmark()
    policy = TrustPolicy(probation=args.probation, floor=args.floor)
    with tempfile.TemporaryDirectory(prefix="taskapi-verification-bench-") as root:
        os.environ.setdefault("TASKAPI_DATA_DIR", str(Path(root) / "data"))
        report = await run_mix(
            Path(root) / "node",
            HONEST + CHEATERS + INTERMITTENT,
            args.subtasks,
            policy=policy,
            seed=args.seed,
            in_flight=args.in_flight,
            benchmark_score=score,
        )
    print(describe(report))
    for line in report.escaped + report.honest_rejected:
        print("  " + line)
    summary = {
        "results": report.results,
        "forged": report.forged,
        "caught": report.caught,
        "caught_pct": round(100 * report.caught / max(report.forged, 1), 2),
        "caught_by_app": report.caught_by_app,
        "caught_by_reexecution": report.caught_by_reexecution,
        "caught_by_audit": report.caught_by_audit,
        "caught_after_task_end": report.caught_after_task_end,
        "escaped": len(report.escaped),
        "honest_results": report.honest_results,
        "honest_rejected": len(report.honest_rejected),
        "overhead_pct": round(100 * report.overhead, 2),
        "steady_overhead_pct": round(100 * report.steady_overhead, 2),
        "steady_results": report.steady_results,
        "steady_reexecuted_results": report.steady_reexecuted,
        "wall_s": round(report.wall_s, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subtasks", type=int, default=1500, help="Judged results to reach (default 1500).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--floor", type=float, default=TrustPolicy.floor)
    parser.add_argument("--probation", type=int, default=TrustPolicy.probation)
    parser.add_argument("--in-flight", type=int, default=2, help="Tasks running at once.")
    asyncio.run(main(parser.parse_args()))
