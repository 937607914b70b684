"""`taskapi envs list`: every registered environment, whether this machine can run it and why, its scores.

Environments are found through the `taskapi.environments` entry points (`environments.registry`). What
an environment measured: its support check's findings (engine version, GPU names, wasmtime version), and
its benchmark score, as `taskapi provider join` stored it in the data dir, or measured now with
`--benchmark`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from environments.registry import EnvironmentInfo, list_environments
from runtime.appmanager.manager import default_data_dir
from runtime.node.runners import runners_for

BENCHMARKS_FILE = Path("provider") / "benchmarks.json"
"""Where in a data dir `taskapi provider join` keeps its benchmark scores (`ProviderNode.benchmarks`)."""


async def measure(env_id: str) -> float:
    """Run `env_id`'s benchmark once, as a provider does on first start."""
    (runner,) = runners_for([env_id])
    try:
        return await runner.benchmark()
    finally:
        await runner.close()


def stored_scores(data_dir: Path) -> dict[str, float]:
    """The benchmark scores `taskapi provider join` stored in `data_dir` (none if it has not run)."""
    path = data_dir / BENCHMARKS_FILE
    try:
        scores = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in scores.items()} if isinstance(scores, dict) else {}


def _details(info: EnvironmentInfo) -> str:
    """The support check's findings; for an environment with GPUs (docker_gpu) also the GPUs found when
    something else is missing (its check stops at the first missing piece, an engine that does not answer
    hides the GPUs found)."""
    reason = info.support.reason
    gpus = info.environment is not None and info.environment.declared_capabilities.gpu
    if gpus and not info.support.supported:
        from environments.docker.gpu import discover  # docker is optional: only where docker_gpu is listed

        found = discover()
        if found.gpus and found.describe() not in reason:
            reason += f"; found {found.describe()}"
    return reason


def _capabilities(info: EnvironmentInfo) -> list[str]:
    """The capabilities its class declares true (`deterministic`, `metered`, `gpu`, ...; none if it did not
    load), `unsandboxed` for one that is no sandbox."""
    if info.environment is None:
        return []
    declared = dataclasses.asdict(info.environment.declared_capabilities)
    sandboxed = declared.pop("sandboxed")
    return [name for name, value in declared.items() if value] + ([] if sandboxed else ["unsandboxed"])


def _row(info: EnvironmentInfo, score: float | None, measured: str) -> dict[str, Any]:
    return {
        "env": info.env_id,
        "supported": info.support.supported,
        "capabilities": _capabilities(info),
        "details": _details(info),
        "benchmark": score,
        "benchmark_source": measured if score is not None else None,
    }


@click.group("envs")
def envs() -> None:
    """The compute environments this node knows, and what this machine can run."""


@envs.command("list")
@click.option(
    "--benchmark",
    is_flag=True,
    help="Measure each supported environment now (seconds; docker starts a container) instead of "
    "showing the scores `provider join` stored.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_data_dir,
    show_default="$TASKAPI_DATA_DIR or ~/.local/share/taskapi",
    help="Where `provider join` stored its benchmark scores.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout.")
def list_envs(benchmark: bool, data_dir: Path, as_json: bool) -> None:
    """Every registered environment: supported here or not and why, engine / GPU / wasmtime found, and
    its benchmark score (higher is faster)."""
    infos = list_environments()
    stored = stored_scores(data_dir)
    rows = []
    for info in infos:
        if benchmark and info.support.supported:
            try:
                rows.append(_row(info, asyncio.run(measure(info.env_id)), "measured now"))
            except Exception as exc:
                row = _row(info, None, "")
                row["details"] += f"; benchmark failed: {type(exc).__name__}: {exc}"
                rows.append(row)
        else:
            rows.append(_row(info, stored.get(info.env_id), f"stored in {data_dir / BENCHMARKS_FILE}"))
    if as_json:
        click.echo(json.dumps(rows))
        return
    table = Table("env", "ok", "benchmark", "capabilities", "details", width=min(Console().width, 110))
    table.columns[0].no_wrap = table.columns[1].no_wrap = table.columns[2].no_wrap = True
    table.columns[3].overflow = table.columns[4].overflow = "fold"
    for row in rows:
        ok = "[green]yes[/]" if row["supported"] else "[red]no[/]"
        score = "-" if row["benchmark"] is None else f"{row['benchmark']:.1f}"
        table.add_row(row["env"], ok, score, ", ".join(row["capabilities"]) or "-", row["details"])
    console = Console()
    console.print(table)
    if not benchmark and any(row["benchmark"] is None and row["supported"] for row in rows):
        console.print("benchmark -: not measured yet (`taskapi envs list --benchmark` measures now)")
