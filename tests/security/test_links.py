"""No host code follows a guest's link (issue 18, item 1), through the real node.

A hostile gWASM app (WAT, `link_guest.py`) plants WASI symlinks to a host file or folder where the node
looks: its compute result in `/output`, the resources it names in `subtask_inputs`, its task outputs.
Each runs as a task on a real `taskapi requestor serve` with a real `taskapi provider join --env wasm`.
Each case asserts the named refusal (the subtask or task fails with `refused <path>: it is a symbolic
link`), that the host file's bytes appear in no file anywhere under the test's folders (results,
served resources, outputs, stores), and that both nodes keep running and still finish an honest task.

WASI refuses a symlink with an absolute target (EPERM), so every case here uses a relative target
climbing out with `..` (the helper's refusal of absolute links is tested in test_sandboxed_files.py).
Hard links need no case of their own: WASI's `path_link` cannot link a file from outside the guest's
writable folders (`test_wasi_cannot_hard_link_a_file_it_cannot_write`). FIFOs, sockets and devices
cannot be made by a WASI guest at all; the helper's refusal of them is tested in test_sandboxed_files.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import wasmtime

from apps.sdk.sandboxed_files import UnsafePath
from runtime.node.journal import Entry, Input
from runtime.node.reexecute import Unverifiable, stage_inputs
from runtime.node.resources import ResourceRegistry
from tests.environments.wasm_environment.guests import HELPERS, WASI_IMPORTS, wat_string
from tests.node.cluster import Cluster, Provider, Requestor

from .link_guest import (
    OUTPUT_FD,
    SUBTASK_INPUTS_FD,
    TASK_OUTPUTS_FD,
    File,
    Folder,
    LinkApp,
    Symlink,
    link_app,
)

SECRET = f"host secret {uuid.uuid4().hex}: no guest may read this\n".encode()


def deep(path: Path) -> str:
    """A relative link target reaching `path` from any folder (as WASI lets a guest write it)."""
    return "../" * 40 + str(path).lstrip("/")


@dataclass(frozen=True)
class Case:
    app: LinkApp
    refusal: str
    """Expected in the failed subtask's reason (or the failed task's, for outputs)."""
    task_fails: bool = False


def cases(secret: Path) -> dict[str, Case]:
    folder = secret.parent
    link = "it is a symbolic link"
    return {
        # the provider's compute result
        "result links to a host file": Case(
            LinkApp(compute=(Symlink(OUTPUT_FD, "result.txt", deep(secret)),)), f"/result.txt: {link}"
        ),
        "result links to a host folder": Case(
            LinkApp(compute=(Symlink(OUTPUT_FD, "result.txt", deep(folder)),)), f"/result.txt: {link}"
        ),
        "result is a link chain": Case(
            LinkApp(
                compute=(Symlink(OUTPUT_FD, "hop", deep(secret)), Symlink(OUTPUT_FD, "result.txt", "hop"))
            ),
            f"/result.txt: {link}",
        ),
        "result is a dangling link": Case(
            LinkApp(compute=(Symlink(OUTPUT_FD, "result.txt", "../../no/such/file"),)), f"/result.txt: {link}"
        ),
        "result links to a file of its own": Case(
            LinkApp(compute=(File(OUTPUT_FD, "real.txt"), Symlink(OUTPUT_FD, "result.txt", "real.txt"))),
            f"/result.txt: {link}",
        ),
        "result is a link in a subfolder": Case(
            LinkApp(
                compute=(Folder(OUTPUT_FD, "sub"), Symlink(OUTPUT_FD, "sub/result.txt", deep(secret))),
                output="sub/result.txt",
            ),
            f"/sub/result.txt: {link}",
        ),
        "result lies in a folder that links to a host folder": Case(
            LinkApp(compute=(Symlink(OUTPUT_FD, "sub", deep(folder)),), output=f"sub/{secret.name}"),
            f"/sub: {link}",
        ),
        # the requestor's resources
        "resource links to a host file": Case(
            LinkApp(requestor=(Symlink(SUBTASK_INPUTS_FD, "res.bin", deep(secret)),), resources=("res.bin",)),
            f"refused res.bin: {link}",
        ),
        "resource links to a host folder": Case(
            LinkApp(requestor=(Symlink(SUBTASK_INPUTS_FD, "res.bin", deep(folder)),), resources=("res.bin",)),
            f"refused res.bin: {link}",
        ),
        # the requestor's task outputs
        "task output links to a host folder": Case(
            LinkApp(requestor=(Symlink(TASK_OUTPUTS_FD, "leak", deep(folder)),)),
            f"task outputs refused: refused leak: {link}",
            task_fails=True,
        ),
        "task output links to a host file": Case(
            LinkApp(requestor=(Symlink(TASK_OUTPUTS_FD, "leak.txt", deep(secret)),)),
            f"task outputs refused: refused leak.txt: {link}",
            task_fails=True,
        ),
        "task output link in a subfolder": Case(
            LinkApp(
                requestor=(
                    File(TASK_OUTPUTS_FD, "fine.txt"),
                    Folder(TASK_OUTPUTS_FD, "sub"),
                    Symlink(TASK_OUTPUTS_FD, "sub/leak", deep(secret)),
                )
            ),
            f"task outputs refused: refused sub/leak: {link}",
            task_fails=True,
        ),
    }


CASE_NAMES = sorted(cases(Path("/x/y")))
HONEST = "honest"


@dataclass
class Nodes:
    cluster: Cluster
    requestor: Requestor
    provider: Provider
    secret: Path
    apps: dict[str, str]
    """Case name -> app name."""


def add_app(cluster: Cluster, name: str, app: LinkApp) -> str:
    """Build the app's module, add and enable it; its sha256."""
    folder = cluster.root / "apps" / name
    folder.mkdir(parents=True)
    module = wasmtime.wat2wasm(link_app(app))
    (folder / "app.wasm").write_bytes(module)
    digest = hashlib.sha256(module).hexdigest()
    descriptor = {
        "name": name,
        "version": "0.1.0",
        "environment": "wasm",
        "prerequisites": {"module": "app.wasm", "sha256": digest},
    }
    (folder / "descriptor.json").write_text(json.dumps(descriptor))
    requestor_data = cluster.root / "requestor"  # where Cluster.requestor() keeps its data (and apps)
    cluster.cli("apps", "--data-dir", str(requestor_data), "add", str(folder), "--enable")
    return digest


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    """One requestor and one wasm provider that whitelists every hostile app's module."""
    cluster = Cluster(tmp_path_factory.mktemp("links"))
    try:
        secret = cluster.root / "host" / "secret.txt"
        secret.parent.mkdir()
        secret.write_bytes(SECRET)
        apps, allow = {}, []
        for index, (case_name, case) in enumerate(sorted(cases(secret).items())):
            apps[case_name] = f"links-{index}"
            allow += ["--allow", add_app(cluster, apps[case_name], case.app)]
        apps[HONEST] = "links-honest"
        allow += ["--allow", add_app(cluster, apps[HONEST], LinkApp())]
        requestor = cluster.requestor()
        provider = cluster.provider("provider", requestor, env="wasm", options=tuple(allow))
        yield Nodes(cluster, requestor, provider, secret, apps)
    finally:
        cluster.close()
        print(cluster.logs())


def files_holding_the_secret(nodes: Nodes) -> list[Path]:
    """Regular files under the test's root (links not followed) that contain the secret, but the secret."""
    found = []
    for folder, _, names in os.walk(nodes.cluster.root, followlinks=False):
        for name in names:
            path = Path(folder, name)
            if path == nodes.secret or path.is_symlink() or not path.is_file():
                continue
            if SECRET.strip() in path.read_bytes():
                found.append(path)
    return found


def run_task(nodes: Nodes, case_name: str) -> tuple[str, dict[str, int], str, list[str]]:
    """Submit the case's app as a task; its final state, subtasks by state, reason and subtask reasons."""
    requestor = nodes.requestor
    task_id = requestor.submit(nodes.apps[case_name], "wasm", {})
    status = requestor.wait_for_task(task_id)
    reasons = [subtask.reason for subtask in requestor.store.subtasks(task_id)]
    return status.state, dict(status.subtasks_by_state), status.reason, reasons


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_a_guest_link_is_refused_never_followed(nodes: Nodes, case_name: str) -> None:
    case = cases(nodes.secret)[case_name]
    state, by_state, reason, subtask_reasons = run_task(nodes, case_name)

    if case.task_fails:
        assert state == "failed", (state, reason)
        assert case.refusal in reason, reason
    else:
        assert by_state.get("failed", 0) >= 1, (by_state, subtask_reasons)
        assert any(case.refusal in text for text in subtask_reasons), subtask_reasons
        assert by_state.get("accepted", 0) == 0, by_state
    assert files_holding_the_secret(nodes) == []
    assert nodes.requestor.running and nodes.provider.running


def test_the_nodes_still_finish_an_honest_task(nodes: Nodes) -> None:
    """After every hostile case (and as a control: the guest works when it plants no link)."""
    state, by_state, reason, _ = run_task(nodes, HONEST)
    assert (state, by_state) == ("finished", {"accepted": 1}), reason
    assert files_holding_the_secret(nodes) == []


EPERM = 63  # WASI's errno


def test_wasi_makes_no_hard_link_to_a_host_file_and_no_absolute_symlink(tmp_path: Path) -> None:
    """`path_link` from the read-only `/inputs` or through `..` is refused, and so is `path_symlink` with
    an absolute target (EPERM): only relative symbolic links that climb out need refusing on the host."""
    inputs, output = tmp_path / "inputs", tmp_path / "output"
    inputs.mkdir()
    output.mkdir()
    (inputs / "x").write_bytes(b"input")
    (tmp_path / "secret").write_bytes(SECRET)
    imports = """
      (import "wasi_snapshot_preview1" "path_link"
        (func $path_link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_symlink"
        (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))"""

    def errno(source: bytes, call: str) -> int:
        body = f"""
          (data (i32.const 256) {wat_string(source)}) (data (i32.const 512) "made")
          (func (export "_start") (call $proc_exit {call}))"""
        wat = f'(module {WASI_IMPORTS} {imports} (memory (export "memory") 1) {HELPERS} {body})'
        engine = wasmtime.Engine()
        store = wasmtime.Store(engine)
        wasi = wasmtime.WasiConfig()
        wasi.preopen_dir(str(inputs), "/inputs", False)
        wasi.preopen_dir(str(output), "/output", True)
        store.set_wasi(wasi)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        instance = linker.instantiate(store, wasmtime.Module(engine, wat))
        try:
            instance.exports(store)["_start"](store)  # type: ignore[operator]
        except wasmtime.ExitTrap as exit_:
            return exit_.code
        return 0

    def hard_link(from_fd: int, source: bytes) -> int:
        return errno(
            source,
            f"(call $path_link (i32.const {from_fd}) (i32.const 0) (i32.const 256) (i32.const {len(source)})"
            " (i32.const 4) (i32.const 512) (i32.const 4))",
        )

    def symlink(target: bytes) -> int:
        return errno(
            target,
            f"(call $path_symlink (i32.const 256) (i32.const {len(target)}) (i32.const 4) (i32.const 512)"
            " (i32.const 4))",
        )

    assert hard_link(3, b"x") == EPERM
    assert hard_link(4, b"../secret") == EPERM
    assert hard_link(4, deep(tmp_path / "secret").encode()) == EPERM
    assert symlink(str(tmp_path / "secret").encode()) == EPERM
    assert [path.name for path in output.iterdir()] == []
    assert symlink(b"../secret") == 0, "relative links that climb out are made: the host must refuse them"
    assert os.readlink(output / "made") == "../secret"


# Links swapped in after the node looked: the requestor serves and re-executes from a folder its app's guest
# may write at any time, so a resource that was a regular file when registered may be a link later.


def swap_for_link(path: Path, secret: Path) -> None:
    path.unlink()
    path.symlink_to(deep(secret))


def test_a_resource_swapped_for_a_link_after_registration_is_not_served(tmp_path: Path) -> None:
    inputs, secret = tmp_path / "subtask_inputs", tmp_path / "secret"
    inputs.mkdir()
    secret.write_bytes(SECRET)
    (inputs / "res.bin").write_bytes(b"resource")
    registry = ResourceRegistry()
    digest, size = registry.register(inputs, "res.bin")
    assert size == len(b"resource")
    swap_for_link(inputs / "res.bin", secret)
    with pytest.raises(UnsafePath, match=r"refused res\.bin: it is a symbolic link"):
        registry.open(digest)


def test_an_input_swapped_for_a_link_is_not_staged_for_re_execution(tmp_path: Path) -> None:
    inputs, staged, secret = tmp_path / "subtask_inputs", tmp_path / "staged", tmp_path / "secret"
    inputs.mkdir()
    staged.mkdir()
    secret.write_bytes(SECRET)
    (inputs / "res.bin").write_bytes(b"resource")
    entry = Entry(
        subtask_id="s1",
        task_id="t1",
        provider_id="p",
        app_id="a",
        app_name="app",
        env_id="wasm",
        module_sha256="0" * 64,
        module_path="",
        inputs=(Input("res.bin", hashlib.sha256(b"resource").hexdigest()),),
        inputs_dir=str(inputs),
        params_json="{}",
        seed="t1/s1",
        assigned_ms=0,
    )
    stage_inputs(entry, staged)
    assert (staged / "res.bin").read_bytes() == b"resource"
    (staged / "res.bin").unlink()
    swap_for_link(inputs / "res.bin", secret)
    with pytest.raises(Unverifiable, match=r"refused res\.bin: it is a symbolic link"):
        stage_inputs(entry, staged)
    assert list(staged.iterdir()) == []
