"""A hostile gWASM app written in WAT: it follows the guest contract (docs/wasm-apps.md) and plants
symbolic links (WASI `path_symlink`, which takes any target) where host code will look.

Requestor side: `next_subtask` hands out one subtask the first time (a marker file in `/task` remembers
it), doing its requestor-side `Action`s first (links in `/task/subtask_inputs` or `/task/task_outputs`);
`has_pending_subtasks` is true until then; `verify` says SUCCESS. Provider side: `compute` does its
provider-side actions in `/output` and names `output` as its result.

Preopen descriptors: requestor side 3 `/task`, 4 `task_inputs`, 5 `subtask_inputs`, 6 `subtask_outputs`,
7 `task_outputs`; provider side 3 `/inputs`, 4 `/output`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tests.environments.wasm_environment.guests import HELPERS, RIGHTS_ALL, WASI_IMPORTS, wat_string

SUBTASK_INPUTS_FD = 5
TASK_OUTPUTS_FD = 7
OUTPUT_FD = 4

EXTRA_IMPORTS = """
  (import "wasi_snapshot_preview1" "path_symlink"
    (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory"
    (func $path_create_directory (param i32 i32 i32) (result i32)))
"""

O_CREAT_EXCL = 5
O_CREAT_TRUNC = 9


@dataclass(frozen=True)
class Symlink:
    """`name -> target` in the folder of descriptor `fd`."""

    fd: int
    name: str
    target: str


@dataclass(frozen=True)
class Folder:
    fd: int
    name: str


@dataclass(frozen=True)
class File:
    """A regular file `name` holding `data` in the folder of descriptor `fd`."""

    fd: int
    name: str
    data: bytes = b'{"ok": true}'


Action = Symlink | Folder | File


@dataclass(frozen=True)
class LinkApp:
    requestor: tuple[Action, ...] = ()
    """Done in next_subtask, before the one subtask is handed out."""
    resources: tuple[str, ...] = ()
    compute: tuple[Action, ...] = (File(OUTPUT_FD, "result.txt"),)
    output: str = "result.txt"


class _Data:
    """Static data of the module: byte strings laid out from offset 4096."""

    def __init__(self) -> None:
        self.segments: list[str] = []
        self.offset = 4096

    def add(self, data: bytes) -> tuple[int, int]:
        at = self.offset
        self.segments.append(f"(data (i32.const {at}) {wat_string(data)})")
        self.offset += len(data) + 16 - len(data) % 16
        return at, len(data)


def _actions(data: _Data, actions: tuple[Action, ...]) -> str:
    code = []
    for action in actions:
        name, name_len = data.add(action.name.encode())
        if isinstance(action, Symlink):
            target, target_len = data.add(action.target.encode())
            call = (
                f"(call $path_symlink (i32.const {target}) (i32.const {target_len}) (i32.const {action.fd})"
                f" (i32.const {name}) (i32.const {name_len}))"
            )
        elif isinstance(action, Folder):
            call = (
                f"(call $path_create_directory (i32.const {action.fd}) (i32.const {name})"
                f" (i32.const {name_len}))"
            )
        else:
            content, content_len = data.add(action.data)
            code.append(
                f"(call $must (call $open (i32.const {action.fd}) (i32.const {name}) (i32.const {name_len})"
                f" (i32.const {O_CREAT_TRUNC}) (i64.const {RIGHTS_ALL})))"
            )
            call = f"(call $write (i32.load (i32.const 64)) (i32.const {content}) (i32.const {content_len}))"
        code.append(f"(call $must {call})")
    return "\n".join(code)


def _reply(data: _Data, reply: object) -> str:
    at, length = data.add(json.dumps(reply).encode())
    return f"(drop (call $write (i32.const 1) (i32.const {at}) (i32.const {length})))"


def link_app(app: LinkApp) -> str:
    """The WAT text of the app."""
    data = _Data()
    marker, marker_len = data.add(b"handed-out")
    subtask = {"subtask": {"params": {}, "resources": list(app.resources)}}
    dispatch = {
        "create_task": _reply(data, {}),
        "next_subtask": f"""
            (if (i32.eqz (call $open (i32.const 3) (i32.const {marker}) (i32.const {marker_len})
                                     (i32.const {O_CREAT_EXCL}) (i64.const {RIGHTS_ALL})))
              (then {_actions(data, app.requestor)} {_reply(data, subtask)})
              (else {_reply(data, {"subtask": None})}))""",
        "has_pending_subtasks": f"""
            (if (i32.eqz (call $open (i32.const 3) (i32.const {marker}) (i32.const {marker_len})
                                     (i32.const 0) (i64.const {RIGHTS_ALL})))
              (then {_reply(data, {"has_pending_subtasks": False})})
              (else {_reply(data, {"has_pending_subtasks": True})}))""",
        "verify": _reply(data, {"result": "SUCCESS", "reason": ""}),
        "discard_subtasks": _reply(data, {"discarded_subtask_ids": []}),
        "abort_task": _reply(data, {}),
        "abort_subtask": _reply(data, {}),
        "benchmark": _reply(data, {"score": 1.0}),
        "compute": f"{_actions(data, app.compute)} {_reply(data, {'output': app.output})}",
    }
    branches = []
    for operation, code in dispatch.items():
        at, length = data.add(operation.encode())
        branches.append(
            f"(if (call $is (i32.const {at}) (i32.const {length}))"
            f" (then {code} (call $proc_exit (i32.const 0))))"
        )
    return f"""(module {WASI_IMPORTS} {EXTRA_IMPORTS}
      (memory (export "memory") 1)
      {HELPERS}
      {" ".join(data.segments)}
      ;; a failed WASI call ends the run with its errno as the exit code
      (func $must (param $errno i32)
        (if (local.get $errno) (then (call $proc_exit (local.get $errno)))))
      ;; whether argv[1] (its pointer at 1028, its bytes NUL-terminated) equals the `len` bytes at `ptr`
      (func $is (param $ptr i32) (param $len i32) (result i32) (local $arg i32) (local $i i32)
        (local.set $arg (i32.load (i32.const 1028)))
        (block $differ
          (loop $next
            (if (i32.eq (local.get $i) (local.get $len))
              (then (return (i32.eqz (i32.load8_u (i32.add (local.get $arg) (local.get $i)))))))
            (br_if $differ (i32.ne (i32.load8_u (i32.add (local.get $arg) (local.get $i)))
                                   (i32.load8_u (i32.add (local.get $ptr) (local.get $i)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $next)))
        (i32.const 0))
      (func (export "_start")
        (call $must (call $args_sizes_get (i32.const 100) (i32.const 104)))
        (call $must (call $args_get (i32.const 1024) (i32.const 2048)))
        {" ".join(branches)}
        (call $proc_exit (i32.const 99))))"""
