"""Hostile wasm modules against the wasm environment's limits (issue 18, item 3).

Every case runs a WAT guest on real wasmtime in a real worker process, with small limits so that it ends
fast, and asserts: the limit it hits is named (a `Trap` of its kind with the limit in the message, or a
`ModuleRejected` naming it), the environment still runs an honest module afterwards, and nothing was
written outside the guest's sandbox folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from apps.sdk.errors import AppError
from apps.sdk.workdir import ProviderTaskDir, RequestorTaskDir
from environments.wasm import (
    Determinism,
    ModuleRejected,
    Preopen,
    TrapKind,
    WasmConfig,
    WasmEnvironment,
    WasmLimits,
    WasmResult,
    WasmRun,
)
from environments.wasm.app_adapter import ComputeLimits, WasmApp, WasmModule, WasmRequestorApp
from environments.wasm.deterministic import MAX_RANDOM_BYTES, REALTIME_BASE_NS
from environments.wasm.runs import DEFAULT_FUEL, DEFAULT_WALL_TIME_S, CompileLimits
from protos import node_pb2 as npb
from runtime.node.compute import WasmRunner

KIB = 1 << 10
MIB = 1 << 20
RIGHTS_ALL = "0x1fffffff"
O_CREAT_TRUNC = 9
WASI = "wasi_snapshot_preview1"
IMPORTS = f"""
  (import "{WASI}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "{WASI}" "fd_pwrite" (func $fd_pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "{WASI}" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "{WASI}" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "{WASI}" "fd_filestat_get" (func $fd_filestat_get (param i32 i32) (result i32)))
  (import "{WASI}" "path_filestat_get" (func $path_filestat_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "{WASI}" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "{WASI}" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "{WASI}" "proc_exit" (func $proc_exit (param i32)))
"""
HELPERS = f"""
  ;; write(fd, ptr, len) -> errno, through the iovec at 0..8 (bytes written at 8)
  (func $write (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
  ;; create(dirfd, name, len) -> errno: creates or truncates the file; its fd at 64
  (func $create (param $dir i32) (param $name i32) (param $len i32) (result i32)
    (call $path_open (local.get $dir) (i32.const 0) (local.get $name) (local.get $len)
      (i32.const {O_CREAT_TRUNC}) (i64.const {RIGHTS_ALL}) (i64.const {RIGHTS_ALL})
      (i32.const 0) (i32.const 64)))
"""


def module(body: str, pages: int = 2) -> str:
    """A WASI command: the imports and helpers above, `pages` of exported memory, then `body`."""
    return f'(module {IMPORTS} (memory (export "memory") {pages}) {HELPERS} {body})'


def name_at(offset: int, name: str) -> str:
    return f'(data (i32.const {offset}) "{name}")'


def printing(text: bytes) -> str:
    """A guest that writes `text` to stdout."""
    literal = "".join(f"\\{byte:02x}" for byte in text)
    return module(
        f"""(data (i32.const 1024) "{literal}")
        (func (export "_start")
          (drop (call $write (i32.const 1) (i32.const 1024) (i32.const {len(text)}))))"""
    )


HELLO = printing(b"hello\n")

# -- store limits: memories, tables, instances -----------------------------------------------------------

FOUR_MEMORIES = '(module (memory 1) (memory 1) (memory 1) (memory 1) (func (export "_start")))'
HUGE_MEMORY_MINIMUM = '(module (memory (export "memory") 512) (func (export "_start")))'
MEMORY_BOMB = module(
    """(func (export "_start")
         (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
         unreachable)"""
)
TABLE_BOMB = """(module (table (export "table") 1 funcref)
  (func (export "_start")
    (loop $grow (br_if $grow (i32.ne (table.grow (ref.null func) (i32.const 1)) (i32.const -1))))
    unreachable))"""
HUGE_TABLE_MINIMUM = '(module (table 100000 funcref) (func (export "_start")))'
FIVE_TABLES = f'(module {"(table 1 funcref) " * 5} (func (export "_start")))'

SMALL = WasmLimits(wall_time_s=5, memory_bytes=4 * MIB, table_elements=4096, tables=4)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (FOUR_MEMORIES, "memory count limit of 1 reached"),
        (HUGE_MEMORY_MINIMUM, f"memory limit of {4 * MIB} bytes reached"),
        (HUGE_TABLE_MINIMUM, "table limit of 1024 elements reached"),
        (FIVE_TABLES, "table count limit of 4 reached"),
    ],
    ids=["four-memories", "memory-minimum", "table-minimum", "five-tables"],
)
def test_a_module_over_a_store_limit_is_refused_with_the_limit_named(
    env: WasmEnvironment, sandbox: Path, source: str, message: str
) -> None:
    with pytest.raises(ModuleRejected, match=f"cannot be instantiated: {message}"):
        run(env, guest(sandbox, source), SMALL)


@pytest.mark.parametrize(
    ("source", "kind", "message"),
    [
        (MEMORY_BOMB, TrapKind.MEMORY_LIMIT, f"memory limit of {4 * MIB} bytes (4 MiB) reached"),
        (TABLE_BOMB, TrapKind.TABLE_LIMIT, "table limit of 1024 elements reached"),
    ],
    ids=["memory-grow", "table-grow"],
)
def test_growing_past_a_limit_ends_the_run_with_the_limit_named(
    env: WasmEnvironment, sandbox: Path, source: str, kind: TrapKind, message: str
) -> None:
    result = run(env, guest(sandbox, source), SMALL)
    assert result.trap is not None and result.trap.kind is kind
    assert message in result.trap.message


# -- output quota: bytes and files in the writable preopens ----------------------------------------------

OUTPUT = WasmLimits(wall_time_s=5, output_bytes=256 * KIB, output_files=20)

WRITE_UNTIL_REFUSED = module(
    f"""{name_at(256, "big.bin")}
    (func (export "_start") (local $fd i32) (local $errno i32)
      (if (call $create (i32.const 3) (i32.const 256) (i32.const 7)) (then (call $proc_exit (i32.const 100))))
      (local.set $fd (i32.load (i32.const 64)))
      (loop $more
        (local.set $errno (call $write (local.get $fd) (i32.const 4096) (i32.const 32768)))
        (br_if $more (i32.eqz (local.get $errno))))
      (call $proc_exit (local.get $errno)))"""
)
"""Appends 32 KiB at a time to one file until a write fails."""

SPARSE_TERABYTE = module(
    f"""{name_at(256, "sparse.bin")}
    (func (export "_start")
      (if (call $create (i32.const 3) (i32.const 256) (i32.const 10))
        (then (call $proc_exit (i32.const 100))))
      (i32.store (i32.const 0) (i32.const 4096))
      (i32.store (i32.const 4) (i32.const 1))
      (call $proc_exit
        (call $fd_pwrite (i32.load (i32.const 64)) (i32.const 0) (i32.const 1)
          (i64.const {1 << 40}) (i32.const 8))))"""
)
"""Writes one byte at offset 1 TiB (a sparse file that the node would read as 1 TiB of zeros)."""

DIGITS = " ".join(
    f"""(i32.store8 (i32.const {257 + place})
          (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $i) (i32.const {10 ** (3 - place)}))
                                             (i32.const 10))))"""
    for place in range(4)
)
MANY_SMALL_FILES = module(
    f"""{name_at(256, "f0000")}
    (func (export "_start") (local $i i32)
      (loop $more
        {DIGITS}
        (if (call $create (i32.const 3) (i32.const 256) (i32.const 5))
          (then (call $proc_exit (i32.const 101))))
        (drop (call $write (i32.load (i32.const 64)) (i32.const 4096) (i32.const {{size}})))
        (drop (call $fd_close (i32.load (i32.const 64))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $more (i32.lt_u (local.get $i) (i32.const 5000)))))""",
    pages=2,
)
"""Creates up to 5000 files of `size` bytes each (the quota must stop it first)."""


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (WRITE_UNTIL_REFUSED, f"output limit of {256 * KIB} bytes reached"),
        (SPARSE_TERABYTE, f"output limit of {256 * KIB} bytes reached"),
        (MANY_SMALL_FILES.replace("{size}", "16"), "output file limit of 20 files reached"),
        (MANY_SMALL_FILES.replace("{size}", str(60 * KIB)), f"output limit of {256 * KIB} bytes reached"),
    ],
    ids=["one-big-file", "sparse-terabyte", "many-files", "many-mid-files"],
)
def test_output_past_the_quota_ends_the_run_with_the_quota_named(
    env: WasmEnvironment, sandbox: Path, source: str, message: str
) -> None:
    output = sandbox / "output"
    output.mkdir()
    result = run(env, guest(sandbox, source), OUTPUT, (Preopen(output, "/output", writable=True),))
    assert result.trap is not None and result.trap.kind is TrapKind.OUTPUT_LIMIT
    assert message in result.trap.message
    assert all(path.stat().st_size <= OUTPUT.output_bytes + 1 for path in output.iterdir())
    assert sum(1 for _ in output.iterdir()) <= 5000


def test_stdout_past_its_cap_is_cut_and_named(env: WasmEnvironment, sandbox: Path) -> None:
    flood = module(
        """(func (export "_start")
             (loop $again
               (br_if $again (i32.eqz (call $write (i32.const 1) (i32.const 4096) (i32.const 4096)))))
             (call $proc_exit (i32.const 1)))"""
    )
    result = run(env, guest(sandbox, flood), dataclasses.replace(OUTPUT, stdout_bytes=64 * KIB))
    assert result.trap is not None and result.trap.kind is TrapKind.OUTPUT_LIMIT
    assert f"stdout exceeded its cap of {64 * KIB} bytes" in result.trap.message
    assert len(result.stdout) == 64 * KIB


# -- host calls: bounded, and never past the deadline ----------------------------------------------------

RANDOM_HUGE = module(
    f'(func (export "_start") (call $proc_exit (call $random_get (i32.const 0) (i32.const {256 * MIB}))))'
)
RANDOM_LOOP = module(
    f"""(func (export "_start")
         (loop $more (drop (call $random_get (i32.const 0) (i32.const {MAX_RANDOM_BYTES}))) (br $more)))""",
    pages=17,
)
POLL_HUGE = module(
    """(func (export "_start")
         (call $proc_exit
           (call $poll_oneoff (i32.const 0) (i32.const 0) (i32.const 100000) (i32.const 8))))"""
)


@pytest.mark.parametrize(
    ("source", "kind", "message"),
    [
        (
            RANDOM_HUGE,
            TrapKind.HOST_CALL_LIMIT,
            f"random_get of {256 * MIB} bytes exceeds the host-call limit",
        ),
        (
            POLL_HUGE,
            TrapKind.HOST_CALL_LIMIT,
            "poll_oneoff with 100000 subscriptions exceeds the host-call limit",
        ),
        (RANDOM_LOOP, TrapKind.DEADLINE, "wall-clock deadline of 0.3 s exceeded"),
    ],
    ids=["random-256mib", "poll-100k", "random-loop"],
)
def test_host_calls_are_bounded_and_end_by_the_deadline(
    env: WasmEnvironment, sandbox: Path, source: str, kind: TrapKind, message: str
) -> None:
    started = time.monotonic()
    result = run(env, guest(sandbox, source), WasmLimits(wall_time_s=0.3), determinism=Determinism("seed"))
    assert result.trap is not None and result.trap.kind is kind
    assert message in result.trap.message
    assert time.monotonic() - started < 1.5  # well before the worker's own deadline


# -- compiling: module size, compile time and compile memory ---------------------------------------------


def one_huge_function(statements: int) -> str:
    """A valid module whose single function takes Cranelift a lot of memory to compile."""
    body = " ".join(
        f"(local.set $x (i64.add (i64.mul (local.get $x) (i64.const {i})) (local.get $x)))"
        for i in range(statements)
    )
    return f'(module (func (export "_start") (local $x i64) {body}))'


@pytest.mark.parametrize(
    ("source", "limits", "message"),
    [
        (one_huge_function(100), CompileLimits(module_bytes=512), "over the module size limit of 512 bytes"),
        (one_huge_function(100), CompileLimits(time_s=0.01), "exceeded the compile time limit of 0.01 s"),
        (
            one_huge_function(20000),
            CompileLimits(memory_bytes=64 * MIB),
            f"exceeded the compile memory limit of {64 * MIB} bytes",
        ),
    ],
    ids=["module-size", "compile-time", "compile-memory"],
)
def test_compiling_past_a_limit_is_refused_with_the_limit_named(
    tmp_path: Path, sandbox: Path, warm_cache: Path, source: str, limits: CompileLimits, message: str
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(warm_cache, cache)  # the honest module comes from the cache, whatever the limits
    with PrivateEnvironment(cache, WasmConfig(compile=limits)) as env:
        with pytest.raises(ModuleRejected, match=message):
            run(env, guest(sandbox, source), WasmLimits(wall_time_s=5))
        assert len(list(cache.glob("*.cwasm"))) == 1
        assert_healthy(env, sandbox)


# -- the compile cache: content seal, bounded size with LRU eviction -------------------------------------


def test_an_artifact_edited_in_place_with_its_mtime_restored_is_recompiled(
    tmp_path: Path, sandbox: Path
) -> None:
    hello = guest(sandbox, HELLO)
    cache = tmp_path / "cache"
    with PrivateEnvironment(cache) as env:
        assert run(env, hello).stdout == b"hello\n"
    [artifact] = cache.glob("*.cwasm")
    before = artifact.stat()
    data = artifact.read_bytes()
    assert data.count(b"hello\n") == 1
    with open(artifact, "r+b") as handle:  # same inode, same size
        handle.seek(data.index(b"hello\n"))
        handle.write(b"HACKD\n")
    os.utime(artifact, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert artifact.stat().st_ino == before.st_ino and artifact.stat().st_mtime_ns == before.st_mtime_ns
    with PrivateEnvironment(cache) as env:
        assert run(env, hello).stdout == b"hello\n"
    assert b"HACKD" not in artifact.read_bytes()  # recompiled and sealed anew


def test_the_cache_keeps_its_size_bound_by_evicting_the_least_recently_used(
    tmp_path: Path, sandbox: Path
) -> None:
    modules = [guest(sandbox, printing(word.encode()), word) for word in ("first", "second", "third")]
    cache = tmp_path / "cache"
    with PrivateEnvironment(cache) as env:
        for item in modules[:2]:
            run(env, item)
    sizes = [path.stat().st_size for path in cache.glob("*.cwasm")]
    bound = CompileLimits(cache_bytes=sum(sizes) + max(sizes) // 2)
    time.sleep(0.01)
    with PrivateEnvironment(cache, WasmConfig(compile=bound)) as env:
        run(env, modules[0])  # a use of the first from disk: now the second is the least recently used
        run(env, modules[2])
    kept = sorted(path.name.split("-")[0] for path in cache.glob("*.cwasm"))
    assert kept == sorted([modules[0].sha256, modules[2].sha256])
    assert sum(path.stat().st_size for path in cache.glob("*.cwasm")) <= bound.cache_bytes
    assert sorted(path.stem for path in cache.glob("*.seal")) == sorted(
        path.stem for path in cache.glob("*.cwasm")
    )


# -- deterministic file times ----------------------------------------------------------------------------

FILE_TIMES = module(
    f"""{name_at(256, "input.txt")} {name_at(272, "written.txt")}
    (func (export "_start") (local $fd i32)
      (if (call $path_filestat_get (i32.const 3) (i32.const 0) (i32.const 256) (i32.const 9) (i32.const 1024))
        (then (call $proc_exit (i32.const 100))))
      (if (call $create (i32.const 4) (i32.const 272) (i32.const 11))
        (then (call $proc_exit (i32.const 101))))
      (local.set $fd (i32.load (i32.const 64)))
      (drop (call $write (local.get $fd) (i32.const 256) (i32.const 9)))
      (if (call $fd_filestat_get (local.get $fd) (i32.const 1088)) (then (call $proc_exit (i32.const 102))))
      (if (call $path_filestat_get (i32.const 4) (i32.const 0) (i32.const 272) (i32.const 11)
                                    (i32.const 1152))
        (then (call $proc_exit (i32.const 103))))
      (drop (call $write (i32.const 1) (i32.const 1064) (i32.const 24)))
      (drop (call $write (i32.const 1) (i32.const 1128) (i32.const 24)))
      (drop (call $write (i32.const 1) (i32.const 1192) (i32.const 24))))"""
)
"""Prints atim, mtim, ctim of an input file, of a file it just wrote (by fd), and of that file by path."""


def test_file_times_are_the_same_on_every_run_under_the_deterministic_profile(
    env: WasmEnvironment, sandbox: Path
) -> None:
    times = guest(sandbox, FILE_TIMES)
    outputs = []
    for attempt in range(2):
        inputs, output = sandbox / f"inputs-{attempt}", sandbox / f"output-{attempt}"
        inputs.mkdir()
        output.mkdir()
        (inputs / "input.txt").write_text("the input")
        os.utime(inputs / "input.txt", (1_000_000 + attempt, 2_000_000 + attempt))
        preopens = (Preopen(inputs, "/inputs"), Preopen(output, "/output", writable=True))
        result = run(env, times, WasmLimits(wall_time_s=5), preopens, Determinism("task/subtask"))
        assert result.ok, result.describe_failure()
        outputs.append(result.stdout)
        time.sleep(0.02)
    assert outputs[0] == outputs[1]
    assert outputs[0] == REALTIME_BASE_NS.to_bytes(8, "little") * 9


# -- SIGTERM during heavy IO -------------------------------------------------------------------------

REWRITE_FOREVER = module(
    f"""{name_at(256, "busy.bin")}
    (func (export "_start")
      (if (call $create (i32.const 3) (i32.const 256) (i32.const 8))
        (then (call $proc_exit (i32.const 100))))
      (i32.store (i32.const 0) (i32.const 4096))
      (i32.store (i32.const 4) (i32.const 65536))
      (loop $again
        (drop (call $fd_pwrite (i32.load (i32.const 64)) (i32.const 0) (i32.const 1) (i64.const 0)
                               (i32.const 8)))
        (br $again)))""",
)
"""Rewrites the first 64 KiB of a file for ever: heavy IO that stays within every quota."""

NODE = """
import asyncio, signal, sys, time
from pathlib import Path
from environments.wasm import Preopen, WasmConfig, WasmEnvironment, WasmLimits, WasmRun

async def main(cache, module, sha256, output):
    env = WasmEnvironment(WasmConfig(cache_dir=Path(cache), max_parallel=1))
    await env.prepare()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    preopens = (Preopen(Path(output), "/output", writable=True),)
    env.submit(WasmRun(Path(module), sha256, preopens=preopens, limits=WasmLimits(wall_time_s=60)))
    while not env.pool.worker_pids:
        await asyncio.sleep(0.01)
    print(env.pool.worker_pids[0], flush=True)
    await stop.wait()
    await env.clean_up()

asyncio.run(main(*sys.argv[1:]))
"""
"""A node in miniature: runs one module in the wasm environment until SIGTERM, then cleans up."""


def test_sigterm_stops_a_node_whose_module_is_busy_writing(tmp_path: Path, sandbox: Path) -> None:
    busy = guest(sandbox, REWRITE_FOREVER)
    output = sandbox / "output"
    output.mkdir()
    command = [sys.executable, "-c", NODE, str(tmp_path / "cache"), str(busy.path), busy.sha256, str(output)]
    node = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert node.stdout is not None
        worker = int(node.stdout.readline())
        deadline = time.monotonic() + 10
        while not (output / "busy.bin").exists() or (output / "busy.bin").stat().st_size < 65536:
            assert time.monotonic() < deadline, "the module never started writing"
            time.sleep(0.01)
        time.sleep(0.3)  # writing as fast as it can now
        sent = time.monotonic()
        node.send_signal(signal.SIGTERM)
        assert node.wait(timeout=10) == 0
        assert time.monotonic() - sent < 2
        while Path(f"/proc/{worker}").exists() and time.monotonic() - sent < 2:
            time.sleep(0.01)
        assert not Path(f"/proc/{worker}").exists(), "the worker outlived its node"
        assert (output / "busy.bin").stat().st_size == 65536
    finally:
        node.kill()
        node.wait()


# -- every compute gets its task's fuel and deadline ----------------------------------------------------

ENDLESS = module('(func (export "_start") (loop $spin (br $spin)))')


@pytest.mark.parametrize(
    ("task_limits", "provider_limits", "message"),
    [
        ({"fuel": 1_000_000, "wall_time_s": 30.0}, WasmLimits(), "whole budget of 1000000 fuel"),
        ({"fuel": 10**15, "wall_time_s": 0.3}, WasmLimits(), "wall-clock deadline of 0.3 s exceeded"),
        ({"fuel": 10**15, "wall_time_s": 600.0}, WasmLimits(wall_time_s=0.3), "deadline of 0.3 s exceeded"),
        ({"fuel": 10**15}, WasmLimits(fuel=2_000_000), "whole budget of 2000000 fuel"),
    ],
    ids=["task-fuel", "task-deadline", "provider-deadline-caps-task", "provider-fuel-caps-task"],
)
def test_every_wasm_compute_runs_under_its_tasks_fuel_and_deadline(
    env: WasmEnvironment,
    tmp_path: Path,
    sandbox: Path,
    task_limits: dict[str, float],
    provider_limits: WasmLimits,
    message: str,
) -> None:
    endless = guest(sandbox, ENDLESS)
    task_dir = ProviderTaskDir(sandbox / "task-1")
    task_dir.prepare()
    prerequisites = {"module": endless.path.name, "sha256": endless.sha256, "limits": task_limits}
    assignment = npb.Assignment(
        task_id="task-1",
        subtask_id="sub-1",
        app_module=npb.Resource(sha256=endless.sha256),
        prerequisites_json=json.dumps(prerequisites),
        subtask_params_json="{}",
    )
    with contextlib.ExitStack() as stack:
        provider = env
        if provider_limits != env.config.limits:
            provider = stack.enter_context(
                PrivateEnvironment(tmp_path / "cache", WasmConfig(limits=provider_limits))
            )
        started = time.monotonic()
        with pytest.raises(AppError, match=message):
            asyncio.run(WasmRunner(provider).compute(assignment, task_dir, endless.path))
        assert time.monotonic() - started < 5  # the lease is given back at the deadline, not hours later
        assert_healthy(provider, sandbox)


@pytest.mark.parametrize(
    "prerequisites",
    ['{"limits": {"fuel": -1}}', '{"limits": {"wall_time_s": "forever"}}', '{"limits": 7}', "[1]"],
    ids=["negative-fuel", "text-deadline", "not-an-object", "not-a-dict"],
)
def test_malformed_task_limits_are_refused_by_name(prerequisites: str) -> None:
    with pytest.raises(ValueError, match="the task's compute limits are malformed"):
        ComputeLimits.of_task(prerequisites)


@pytest.mark.parametrize(
    ("reply", "limits"),
    [
        ({}, {"fuel": DEFAULT_FUEL, "wall_time_s": DEFAULT_WALL_TIME_S}),
        ({"subtask_fuel": 5000, "subtask_wall_time_s": 2.5}, {"fuel": 5000, "wall_time_s": 2.5}),
    ],
    ids=["defaults", "app-set"],
)
def test_a_wasm_task_carries_its_compute_limits_to_providers(
    env: WasmEnvironment, sandbox: Path, reply: dict[str, float], limits: dict[str, float]
) -> None:
    replier = guest(sandbox, printing(json.dumps(reply).encode()))
    task_dir = RequestorTaskDir(sandbox / "task-1")
    task_dir.prepare()
    app = WasmRequestorApp(WasmApp(WasmModule.load(replier.path), env))
    created = asyncio.run(app.create_task(task_dir, 4, {}))
    assert created.prerequisites["limits"] == limits
    assert ComputeLimits.of_task(json.dumps(created.prerequisites)).model_dump() == limits


# -- fixtures and helpers --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Guest:
    path: Path
    sha256: str


def guest(sandbox: Path, source: str, name: str = "guest") -> Guest:
    data = bytes(wasmtime.wat2wasm(source))
    digest = hashlib.sha256(data).hexdigest()
    modules = sandbox.parent / "modules"
    modules.mkdir(exist_ok=True)
    path = modules / f"{name}-{digest[:12]}.wasm"
    path.write_bytes(data)
    return Guest(path, digest)


def run(
    env: WasmEnvironment,
    module: Guest,
    limits: WasmLimits | None = None,
    preopens: tuple[Preopen, ...] = (),
    determinism: Determinism | None = None,
) -> WasmResult:
    request = WasmRun(
        module=module.path, sha256=module.sha256, limits=limits, preopens=preopens, determinism=determinism
    )
    return asyncio.run(env.run(request))


def assert_healthy(env: WasmEnvironment, sandbox: Path) -> None:
    """The environment still runs an honest module to its normal end."""
    result = run(env, guest(sandbox, HELLO, "healthy"), WasmLimits(wall_time_s=5))
    assert result.ok and result.stdout == b"hello\n"


@dataclasses.dataclass
class PrivateEnvironment:
    """An enabled environment with one worker and its own cache, cleaned up on exit."""

    cache_dir: Path
    config: WasmConfig = dataclasses.field(default_factory=WasmConfig)

    def __enter__(self) -> WasmEnvironment:
        config = self.config.model_copy(update={"cache_dir": self.cache_dir, "max_parallel": 1})
        self.env = WasmEnvironment(config)
        asyncio.run(self.env.prepare())
        return self.env

    def __exit__(self, *exc: object) -> None:
        asyncio.run(self.env.clean_up())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WasmEnvironment]:
    with PrivateEnvironment(tmp_path_factory.mktemp("wasm-limits") / "cache") as shared:
        yield shared


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compile cache holding the honest module (copy it: each test's environment owns its cache)."""
    cache = tmp_path_factory.mktemp("warm") / "cache"
    with PrivateEnvironment(cache) as env:
        assert_healthy(env, tmp_path_factory.mktemp("warm-sandbox"))
    return cache


@pytest.fixture
def sandbox(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """The guest's folder. Afterwards the host folder next to it is untouched, nothing else appeared
    beside it, and (for tests on the shared `env`) the environment still runs an honest module."""
    sandbox, outside = tmp_path / "sandbox", tmp_path / "outside"
    sandbox.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"host file")
    yield sandbox
    assert [(path.name, path.read_bytes()) for path in outside.iterdir()] == [("secret.txt", b"host file")]
    assert {path.name for path in tmp_path.iterdir()} <= {
        "sandbox",
        "outside",
        "modules",
        "cache",
        "warm-cache",
    }
    if "env" in request.fixturenames:
        assert_healthy(request.getfixturevalue("env"), sandbox)
