"""`taskapi replay SUBTASK_ID`: re-run a journalled wasm subtask, compare it with the claim bit for bit."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import click

from environments.registry import capabilities
from runtime.appmanager.manager import default_data_dir
from runtime.node.journal import Entry
from runtime.node.reexecute import Reexecutor, Unverifiable
from runtime.node.replay import ReplayReport, load_entry, replay


@click.command("replay")
@click.argument("subtask_id")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_data_dir,
    show_default="$TASKAPI_DATA_DIR or ~/.local/share/taskapi",
    help="The requestor's data dir (or a `taskapi run --data-dir` dir).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def replay_command(subtask_id: str, data_dir: Path, as_json: bool) -> None:
    """Re-run SUBTASK_ID (a wasm subtask) bit-exactly; exit 0 if output and fuel equal the claim, else 1."""
    try:
        entry = load_entry(data_dir, subtask_id)
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from exc
    except KeyError as exc:
        raise click.UsageError(f"subtask {subtask_id!r} is not in the journal of {data_dir}") from exc
    if not capabilities(entry.env_id).deterministic:
        raise click.UsageError(
            f"subtask {subtask_id} ran in {entry.env_id}, which is not deterministic: no exact replay"
        )
    if entry.output_sha256 is None:
        raise click.ClickException(
            f"subtask {subtask_id} delivered no result ({entry.verdict}): nothing to compare"
        )
    report = asyncio.run(_replay(entry))
    if as_json:
        click.echo(json.dumps(report.to_json()))
    else:
        click.echo(describe(report))
    if not report.bit_exact:
        raise SystemExit(1)


async def _replay(entry: Entry) -> ReplayReport:
    with tempfile.TemporaryDirectory(prefix="taskapi-replay-") as scratch:
        reexecutor = Reexecutor(Path(scratch))
        try:
            return await replay(entry, reexecutor)
        except Unverifiable as exc:
            raise click.ClickException(f"cannot replay subtask {entry.subtask_id}: {exc}") from exc
        finally:
            await reexecutor.close()


def describe(report: ReplayReport) -> str:
    """The report in words: bit-exact equality, or the first difference (byte offset, fuel)."""
    lines = [
        f"subtask {report.subtask_id} of task {report.task_id} ({report.app}), provider {report.provider_id}",
        f"module sha256 {report.module_sha256}, seed {report.seed!r}, journal verdict {report.verdict}",
        f"claimed:  {report.claimed_name} sha256 {report.claimed_sha256} fuel {report.claimed_fuel}",
        f"replayed: {report.replayed_name} sha256 {report.replayed_sha256} fuel {report.replayed_fuel}",
    ]
    if report.bit_exact:
        lines.append("bit-exact: same output bytes and same fuel")
        return "\n".join(lines)
    if report.claimed_name != report.replayed_name:
        lines.append(
            f"output name differs: {report.claimed_name!r} claimed, {report.replayed_name!r} replayed"
        )
    if report.claimed_sha256 != report.replayed_sha256:
        if report.first_difference is not None:
            lines.append(f"output differs: first difference at byte offset {report.first_difference}")
        elif not report.claimed_file_present:
            lines.append("output differs (the claimed file is gone: digests only)")
        else:
            lines.append("output differs")
    if report.fuel_difference:
        lines.append(
            f"fuel differs: claimed {report.claimed_fuel} - replayed {report.replayed_fuel} = "
            f"{report.fuel_difference:+d}"
        )
    return "\n".join(lines)
