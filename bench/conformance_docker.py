"""The docker builds' conformance runs (CI runs the docker tutorialapp only: see docs/conformance.md).

Runs `taskapi conformance` of each docker build with `--examples N` (default 200) and prints each run's
wall time, the examples each group ran, and the result; the reports go to `--out`. blenderapp is pinned
to its cheapest task dimensions and the CPU (`--set resolution=32x24 --set samples=1 --set parts=1 --set
device=cpu`): every Compute and every Verify renders with Blender (kept loaded by each app server), which
is where a blenderapp run's time goes. Needs scripts/setup_docker first.

    python bench/conformance_docker.py [--examples N] [--task-examples N] [--seed S]
                                       [--app tutorialapp|blenderapp]... [--out DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from runtime.conformance.report import Report

RUNS: dict[str, list[str]] = {
    "tutorialapp": [],
    "blenderapp": [
        *("--set", "resolution=32x24", "--set", "samples=1"),
        *("--set", "parts=1", "--set", "device=cpu"),
    ],
}


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--task-examples", type=int, help="examples of each whole-task property")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--app", action="append", choices=sorted(RUNS), help="default: both")
    parser.add_argument("--out", type=Path, default=Path("conformance-bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    for app in args.app or list(RUNS):
        report_path = args.out / f"{app}-docker_cpu-{args.examples}.json"
        command = [sys.executable, "-c", "from runtime.cli import main; main()", "conformance", app]
        command += ["--env", "docker_cpu"]
        command += ["--examples", str(args.examples), "--seed", str(args.seed), *RUNS[app]]
        if args.task_examples:
            command += ["--task-examples", str(args.task_examples)]
        command += ["--report", str(report_path)]
        began = time.monotonic()
        code = subprocess.run(command, check=False).returncode
        seconds = time.monotonic() - began
        report = Report.read(report_path)
        groups = ", ".join(f"{g.name} {g.examples_run} in {g.seconds:.0f} s" for g in report.groups)
        print(f"{app} (docker_cpu): {'PASSED' if report.passed else 'FAILED'} in {seconds:.0f} s; {groups}")
        failed |= code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
