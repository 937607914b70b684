"""`taskapi requestor|provider|task ...`: the node as separate processes on one or many machines."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import secrets
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from grpclib.exceptions import GRPCError, StreamTerminatedError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from apps.sdk.wire_limits import BoundedChannel
from environments.registry import environment_ids
from protos import node_pb2 as npb
from protos.node_grpc import ControlStub
from runtime.appmanager.manager import default_data_dir
from runtime.cli_checks import environment_ready
from runtime.cli_compute import compute_options
from runtime.cli_dashboard import REPORTS_FOLDER, dashboard_option, provider_run, requestor_dashboard
from runtime.cli_inputs import input_files, task_options, with_params_file
from runtime.cli_interrupt import Interrupted, cancel_on_signal, exit_interrupted
from runtime.cli_settings import parse_settings
from runtime.cli_trust import trust_json, trust_table, verification_options
from runtime.conformance.gate import require_conformance
from runtime.node.connections import ConnectionLimits, raise_open_file_limit
from runtime.node.market import MAX_QUEUE
from runtime.node.metrics import serve_metrics
from runtime.node.provider import DEFAULT_QUEUE, ProviderConfig, ProviderNode, RequestorRefused
from runtime.node.requestor import RequestorConfig, RequestorNode
from runtime.node.requestor_service import bearer, serve_requestor
from runtime.node.runners import builtin_whitelist, runners_for
from runtime.node.task_inputs import send_inputs, upload_through
from runtime.node.verification import VerificationConfig

T = TypeVar("T")
console = Console()
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_data_dir,
    show_default="$TASKAPI_DATA_DIR or ~/.local/share/taskapi",
    help="This node's state: tokens (provider-token, control-token), the task store, benchmark scores.",
)


def parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {address!r}")
    return host or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name) can only be reached from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_tls(ca_file: str | None) -> ssl.SSLContext | None:
    """A TLS context trusting `ca_file` (HTTP/2 by ALPN), or None to dial without TLS."""
    if ca_file is None:
        return None
    tls = ssl.create_default_context(cafile=ca_file)
    tls.set_alpn_protocols(["h2"])
    return tls


tls_ca_option = click.option(
    "--tls-ca", type=click.Path(exists=True, dir_okay=False), help="Dial with TLS, trusting this CA."
)


def join_line(host: str, port: int, token_file: Path | None, tls: bool) -> str:
    """What a provider runs to join this requestor: the exact `provider join` line, and where its token is
    (`token_file`; None when the token was given to `requestor serve` rather than stored)."""
    reachable = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    token = f'"$(cat {token_file})"' if token_file else '"$TASKAPI_TOKEN"'
    command = f"taskapi provider join {reachable}:{port} --token {token}"
    if tls:
        command += " --tls-ca CA_FILE"
    where = f"the token is in {token_file}" if token_file else "the token given to --token"
    return f"providers join with ({where}):\n  {command}"


def stored_token(path: Path, given: str | None) -> str:
    """The given token, else the one stored at `path`, else a new one stored there (mode 0600)."""
    if given:
        return given
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    path.touch(mode=0o600)
    path.write_text(token)
    return token


async def until_signalled(
    work: Callable[[asyncio.Event], Awaitable[T]], before_cancel: Callable[[], None] | None = None
) -> T:
    """Run `work(stop)` until it ends; the first SIGINT / SIGTERM cancels it, so it stops at once, and
    raises `Interrupted` (`runtime.cli_interrupt.cancel_on_signal`)."""
    return await cancel_on_signal(work(asyncio.Event()), before_cancel)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


@click.group()
def requestor() -> None:
    """Run a requestor node."""


@requestor.command("serve")
@click.option("--listen", default="127.0.0.1:7420", show_default=True, help="HOST:PORT to listen on.")
@data_dir_option
@click.option(
    "--token", envvar="TASKAPI_TOKEN", help="Token providers must present (default: stored in data dir)."
)
@click.option(
    "--lease-ms",
    default=30_000,
    show_default=True,
    type=click.IntRange(min=100),
    help="How long a provider holds a subtask without a heartbeat before it is handed out again.",
)
@click.option(
    "--stranded-s",
    default=RequestorConfig.stranded_s,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds a task waits once every provider that came was dropped from it or refused it, then fails.",
)
@click.option(
    "--queue-compute-ms",
    default=RequestorConfig.queue_compute_ms,
    show_default=True,
    type=click.IntRange(min=0),
    help="Providers may queue a task's subtasks beyond their capacity while its latest result computed in at"
    " most this many ms (longer ones wait out whole computes in a queue at the task's end).",
)
@click.option("--metrics-port", type=int, help="Serve Prometheus metrics on 127.0.0.1:PORT.")
@click.option(
    "--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Serve TLS with this certificate."
)
@click.option(
    "--tls-key", type=click.Path(exists=True, dir_okay=False), help="The private key of --tls-cert."
)
@click.option(
    "--max-connections",
    default=ConnectionLimits.max_connections,
    show_default=True,
    type=click.IntRange(min=1),
    help="Connections open at once; more are refused.",
)
@click.option(
    "--max-connections-per-peer",
    default=ConnectionLimits.max_per_peer,
    show_default=True,
    type=click.IntRange(min=1),
    help="Connections open at once from one address.",
)
@click.option(
    "--preauth-timeout",
    default=ConnectionLimits.preauth_s,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a connection may stay open without an authenticated call.",
)
@click.option(
    "--idle-timeout",
    default=ConnectionLimits.idle_s,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a connection may stay open with no call and no data.",
)
@click.option(
    "--stall-timeout",
    default=ConnectionLimits.stall_s,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a result upload or resource download may go without progress.",
)
@verification_options
@dashboard_option
def requestor_serve(
    listen: str,
    data_dir: Path,
    token: str | None,
    lease_ms: int,
    stranded_s: float,
    queue_compute_ms: int,
    metrics_port: int | None,
    tls_cert: str | None,
    tls_key: str | None,
    max_connections: int,
    max_connections_per_peer: int,
    preauth_timeout: float,
    idle_timeout: float,
    stall_timeout: float,
    verification: VerificationConfig,
    dashboard: str | None,
) -> None:
    """Serve tasks to providers until interrupted; resumes unfinished tasks from DATA_DIR."""
    _logging()
    host, port = parse_address(listen)
    limits = ConnectionLimits(
        max_connections=max_connections,
        max_per_peer=max_connections_per_peer,
        preauth_s=preauth_timeout,
        idle_s=idle_timeout,
        stall_s=stall_timeout,
    )
    if not tls_cert and not is_loopback(host):
        click.echo(
            f"warning: listening on {host} without TLS: tokens and results cross the network in the clear "
            "(give --tls-cert and --tls-key)",
            err=True,
        )
    open_files = raise_open_file_limit()
    provider_token = stored_token(data_dir / "provider-token", token)
    control_token = stored_token(data_dir / "control-token", None)
    tls = None
    if tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(tls_cert, tls_key)
        tls.set_alpn_protocols(["h2"])
    if metrics_port:
        serve_metrics(metrics_port)

    async def serve(stop: asyncio.Event) -> None:
        node = RequestorNode(
            data_dir,
            RequestorConfig(
                lease_ms=lease_ms,
                heartbeat_ms=max(50, lease_ms // 6),
                stranded_s=stranded_s,
                queue_compute_ms=queue_compute_ms,
                verification=verification,
            ),
        )
        await node.start()
        server, bound = await serve_requestor(
            node,
            host,
            port,
            provider_token=provider_token,
            control_token=control_token,
            tls=tls,
            limits=limits,
        )
        click.echo(
            f"requestor listening on {host}:{bound} (data dir {data_dir}, open-file limit {open_files})",
            err=True,
        )
        token_file = None if token else data_dir / "provider-token"
        click.echo(join_line(host, bound, token_file, tls_cert is not None), err=True)
        try:
            async with contextlib.AsyncExitStack() as extras:
                if dashboard:
                    await extras.enter_async_context(
                        requestor_dashboard(
                            node,
                            dashboard,
                            control_token,
                            data_dir / "control-token",
                            reports_dir=data_dir / REPORTS_FOLDER,
                            tls_cert=tls_cert,
                            tls_key=tls_key,
                        )
                    )
                await stop.wait()
        finally:
            server.close()
            await server.wait_closed()
            await node.stop()

    try:
        asyncio.run(until_signalled(serve))
    except Interrupted as exc:
        exit_interrupted(
            exc,
            f"interrupted ({exc}): requestor stopped; its unfinished tasks resume on the next "
            f"`taskapi requestor serve --data-dir {data_dir}`",
        )


@click.group()
def provider() -> None:
    """Run a provider node."""


@provider.command("join")
@click.argument("address")
@click.option("--token", envvar="TASKAPI_TOKEN", required=True, help="The requestor's provider token.")
@compute_options(offering=True)
@click.option(
    "--queue",
    default=DEFAULT_QUEUE,
    show_default=True,
    type=click.IntRange(0, MAX_QUEUE),
    help="Assignments to hold beyond --capacity, started as soon as a compute slot frees; used only while "
    "computes are short next to a round trip to the requestor (0: never).",
)
@click.option(
    "--price",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Asking price per unit of work (per billion fuel on wasm, per CPU-second on docker).",
)
@click.option("--allow", multiple=True, help="Also whitelist a wasm module sha256 or a local app name.")
@tls_ca_option
@click.option(
    "--require-conformance",
    "reports",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Run only apps with a passing `taskapi conformance` report for their id and digest (repeatable).",
)
@data_dir_option
@dashboard_option
def provider_join(
    address: str,
    token: str,
    envs: tuple[str, ...],
    capacity: int,
    queue: int,
    price: float,
    allow: tuple[str, ...],
    tls_ca: str | None,
    reports: tuple[Path, ...],
    data_dir: Path,
    dashboard: str | None,
) -> None:
    """Dial the requestor at ADDRESS and compute subtasks until interrupted."""
    _logging()
    host, port = parse_address(address)
    for env_id in envs:
        environment_ready(env_id)
    try:
        runners = runners_for(list(envs))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--env") from exc
    whitelist = builtin_whitelist()
    for entry in allow:
        (whitelist.wasm_modules if len(entry) == 64 else whitelist.local_apps).add(entry)
    if reports:
        try:
            whitelist = require_conformance(whitelist, reports)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--require-conformance") from exc
    tls = client_tls(tls_ca)
    config = ProviderConfig(
        host, port, token, data_dir / "provider", capacity=capacity, queue=queue, price=price, tls=tls
    )
    node = ProviderNode(config, runners, whitelist)
    click.echo(f"provider {node.provider_id} joining {host}:{port} with {', '.join(envs)}", err=True)
    try:
        control_token = stored_token(data_dir / "control-token", None) if dashboard else ""
        running: list[int] = []
        work = provider_run(node, dashboard, control_token, data_dir / "control-token")
        asyncio.run(until_signalled(work, lambda: running.append(len(node.activity.running))))
    except RequestorRefused as exc:
        raise click.ClickException(str(exc)) from None
    except Interrupted as exc:
        exit_interrupted(
            exc,
            f"interrupted ({exc}): provider left; stopped {sum(running)} running subtasks "
            "(the requestor hands them out again)",
        )


@click.group()
def task() -> None:
    """Submit, inspect and abort tasks on a running requestor."""


requestor_option = click.option(
    "--requestor",
    "address",
    default="127.0.0.1:7420",
    show_default=True,
    help="HOST:PORT of the requestor (`requestor serve --listen`).",
)
control_token_option = click.option(
    "--token", envvar="TASKAPI_CONTROL_TOKEN", help="Control token (default: read from the data dir)."
)


@dataclass(frozen=True)
class ControlTarget:
    """Where the control API is, how to dial it, and its token."""

    address: str
    token: str
    tls: ssl.SSLContext | None


async def _control(target: ControlTarget, call: Callable[[ControlStub, dict[str, str]], Awaitable[T]]) -> T:
    host, port = parse_address(target.address)
    channel = BoundedChannel(host, port, ssl=target.tls)
    try:
        return await call(ControlStub(channel), bearer(target.token))
    except GRPCError as exc:
        raise click.ClickException(f"{exc.status.name}: {exc.message}") from exc
    except ssl.SSLCertVerificationError as exc:
        raise click.ClickException(
            f"requestor at {target.address}: TLS certificate check failed: {exc.verify_message}"
        ) from exc
    except (OSError, StreamTerminatedError) as exc:
        raise click.ClickException(f"requestor at {target.address} is unreachable: {exc}") from exc
    finally:
        channel.close()


def _control_target(address: str, tls_ca: str | None, data_dir: Path, token: str | None) -> ControlTarget:
    """The target of a `taskapi task` command; the token is --token, else the one in the data dir."""
    path = data_dir / "control-token"
    if not token:
        if not path.is_file():
            raise click.UsageError(f"no --token given and no control token at {path}")
        token = path.read_text().strip()
    return ControlTarget(address, token, client_tls(tls_ca))


@task.command("submit")
@click.argument("app")
@click.option(
    "--env",
    type=click.Choice(environment_ids()),
    default=None,
    help="Environment (default: the app's default).",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A task parameter (repeatable); VALUE is JSON, else text.",
)
@task_options
@click.option(
    "--max-subtasks",
    default=10_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most subtasks the app may split the task into.",
)
@click.option("--wait", is_flag=True, help="Wait for the task to end and print its status.")
@requestor_option
@tls_ca_option
@control_token_option
@data_dir_option
def task_submit(
    app: str,
    env: str | None,
    settings: tuple[str, ...],
    params_file: Path | None,
    inputs: tuple[Path, ...],
    max_subtasks: int,
    wait: bool,
    address: str,
    tls_ca: str | None,
    token: str | None,
    data_dir: Path,
) -> None:
    """Submit a task of APP (its input files streamed to the requestor first); prints its id."""
    params = with_params_file(params_file, parse_settings(settings))
    files = input_files(inputs)
    target = _control_target(address, tls_ca, data_dir, token)

    async def submit(stub: ControlStub, metadata: dict[str, str]) -> npb.SubmitTaskReply:
        input_ids = await send_inputs(upload_through(stub, metadata), files)
        request = npb.SubmitTaskRequest(
            app=app,
            env_id=env or "",
            task_params_json=json.dumps(params),
            max_subtasks=max_subtasks,
            input_ids=input_ids,
        )
        return await stub.SubmitTask(request, metadata=metadata)

    reply = asyncio.run(_control(target, submit))
    click.echo(reply.task_id)
    if wait:
        status = asyncio.run(_wait_for(target, reply.task_id))
        _print_status(status, as_json=False)
        if status.state != "finished":
            raise click.ClickException(f"task {status.task_id} {status.state}: {status.reason}")


async def _wait_for(target: ControlTarget, task_id: str) -> npb.TaskStatus:
    while True:
        status = await _control(
            target, lambda stub, md: stub.GetTask(npb.GetTaskRequest(task_id=task_id), metadata=md)
        )
        if status.state != "active":
            return status
        await asyncio.sleep(0.2)


@task.command("status")
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON on stdout.")
@requestor_option
@tls_ca_option
@control_token_option
@data_dir_option
def task_status(
    task_id: str, as_json: bool, address: str, tls_ca: str | None, token: str | None, data_dir: Path
) -> None:
    """Show a task's state, subtasks and the bill per provider."""
    request = npb.GetTaskRequest(task_id=task_id)
    target = _control_target(address, tls_ca, data_dir, token)
    status = asyncio.run(_control(target, lambda stub, md: stub.GetTask(request, metadata=md)))
    _print_status(status, as_json)


@task.command("abort")
@click.argument("task_id")
@requestor_option
@tls_ca_option
@control_token_option
@data_dir_option
def task_abort(task_id: str, address: str, tls_ca: str | None, token: str | None, data_dir: Path) -> None:
    """Abort a task: providers stop its subtasks at their next heartbeat."""
    request = npb.ControlAbortRequest(task_id=task_id)
    target = _control_target(address, tls_ca, data_dir, token)
    asyncio.run(_control(target, lambda stub, md: stub.AbortTask(request, metadata=md)))
    click.echo(f"task {task_id} aborted")


def _print_status(status: npb.TaskStatus, as_json: bool) -> None:
    summary: dict[str, Any] = {
        "task_id": status.task_id,
        "app": status.app,
        "env": status.env_id,
        "state": status.state,
        "reason": status.reason,
        "subtasks": dict(status.subtasks_by_state),
        "outputs": [str(Path(status.outputs_dir) / name) for name in status.outputs],
        "bills": [
            {
                "provider": b.provider_id,
                "subtasks": b.subtasks,
                "fuel": b.fuel,
                "cpu_ns": b.cpu_ns,
                "cost": b.cost,
            }
            for b in status.bills
        ],
        "trust": [trust_json(t) for t in status.trust],
        "result_info": dict(status.result_info),
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    # Ids, reasons and names come from apps and providers: shown as written, never read as markup.
    console.print(
        f"[bold]{escape(status.task_id)}[/] "
        + escape(f"{status.app} on {status.env_id}: {status.state} {status.reason}")
    )
    console.print("subtasks: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["subtasks"].items())))
    for key, value in sorted(status.result_info.items()):
        console.print(escape(f"{key}: {value}"))
    for output in summary["outputs"]:
        console.print(escape(f"output: {output}"))
    table = Table("provider", "subtasks", "fuel", "cpu ns", "cost")
    for bill in summary["bills"]:
        table.add_row(
            escape(bill["provider"]),
            str(bill["subtasks"]),
            str(bill["fuel"]),
            str(bill["cpu_ns"]),
            f"{bill['cost']:.6f}",
        )
    console.print(table)
    if status.trust:
        console.print(trust_table(status.trust))
