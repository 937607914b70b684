"""The `taskapi` command line against hostile files and network set-ups (issue 18, item 6's small findings).

One unusable file in `<data>/apps` is skipped with a line naming it, and every other app (the shipped
ones included) still works; descriptor text is shown as written, never read as rich markup; `taskapi task`
speaks TLS with `--tls-ca` and says plainly when the certificate does not verify; `requestor serve`
warns when it listens off loopback without TLS. Real processes throughout.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from apps.sdk.process import HOST, free_port
from tests.node.cluster import EXIT_GUARD_S, TASKAPI, NodeProcess

from .test_provider_resilience import self_signed

BAD_FILES: dict[str, Callable[[Path], object]] = {
    "nesting past the stack": lambda apps: (apps / "deep.json").write_text("[" * 100_000 + "]" * 100_000),
    "an integer of 5000 digits": lambda apps: (apps / "big.json").write_text('{"name": ' + "1" * 5000 + "}"),
    "not JSON": lambda apps: (apps / "broken.json").write_text("{"),
    "not UTF-8": lambda apps: (apps / "binary.json").write_bytes(b"\xff\xfe\x00"),
    "a folder named like a descriptor": lambda apps: (apps / "folder.json").mkdir(),
    "a dangling link": lambda apps: (apps / "dangling.json").symlink_to(apps / "nowhere"),
    "a wasm module that is a folder": lambda apps: _wasm_descriptor_with_a_folder_module(apps),
    "JSON that is not an object": lambda apps: (apps / "list.json").write_text("[1, 2, 3]"),
}


def _wasm_descriptor_with_a_folder_module(apps: Path) -> None:
    folder = apps / "wasmfolder"
    (folder / "app.wasm").mkdir(parents=True)
    descriptor = {
        "name": "wasmfolder",
        "version": "1",
        "environment": "wasm",
        "prerequisites": {"module": "app.wasm", "sha256": "a" * 64},
    }
    (folder / "descriptor.json").write_text(json.dumps(descriptor))


def taskapi(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TASKAPI_DATA_DIR": str(home)}
    return subprocess.run([TASKAPI, *args], capture_output=True, text=True, env=env, timeout=EXIT_GUARD_S)


@pytest.mark.parametrize("make", BAD_FILES.values(), ids=list(BAD_FILES))
def test_one_bad_file_in_the_apps_folder_is_skipped_naming_it(
    tmp_path: Path, make: Callable[[Path], object]
) -> None:
    apps = tmp_path / "apps"
    apps.mkdir()
    make(apps)
    (bad,) = [path for path in apps.iterdir()]

    listed = taskapi(tmp_path, "apps", "list")
    shown = taskapi(tmp_path, "apps", "show", "tutorialapp")

    assert listed.returncode == 0, listed.stderr
    assert "tutorialapp" in listed.stdout
    assert "Traceback" not in listed.stderr
    assert f"not loaded: {bad}" in listed.stderr, listed.stderr
    assert shown.returncode == 0, shown.stderr
    assert "Proof of work" in shown.stdout


MARKUP = {
    "closing tag": "[/bold] closes nothing",
    "unknown style": "[nosuchstyle]text[/nosuchstyle]",
    "link": "[link=file:///etc/passwd]click[/link]",
    "escape at the end": "ends with a backslash \\",
}


@pytest.fixture
def markup_app(tmp_path: Path) -> Iterator[Path]:
    apps = tmp_path / "apps"
    apps.mkdir()
    yield apps


@pytest.mark.parametrize("text", MARKUP.values(), ids=list(MARKUP))
def test_descriptor_text_is_shown_as_written(markup_app: Path, text: str) -> None:
    descriptor = {
        "name": "markup",
        "version": "1",
        "description": text,
        "environment": "local",
        "prerequisites": {"module": "apps.tutorialapp"},
        "parameters": {"p": {"type": "string", "description": text}},
    }
    (markup_app / "markup.json").write_text(json.dumps(descriptor))
    home = markup_app.parent

    shown = taskapi(home, "apps", "show", "markup")
    listed = taskapi(home, "apps", "list")

    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    flat = " ".join(shown.stdout.split())
    assert " ".join(text.split()) in flat, shown.stdout
    assert listed.returncode == 0, listed.stderr


class Serving(NodeProcess):
    """`taskapi requestor serve` with its own options, waited on until it listens."""

    def __init__(self, root: Path, listen: str, *options: str) -> None:
        env = {**os.environ, "TASKAPI_DATA_DIR": str(root / "home"), "PYTHONUNBUFFERED": "1"}
        args = [TASKAPI, "requestor", "serve", "--listen", listen, "--data-dir", str(root / "data"), *options]
        super().__init__("requestor", args, root / "requestor.log", env)
        self.wait_for_log("requestor listening on")


@pytest.mark.parametrize(
    "host, warned",
    [("0.0.0.0", True), ("127.0.0.1", False), ("localhost", False), ("127.0.0.2", False)],
    ids=["all interfaces", "loopback", "localhost", "other loopback"],
)
def test_listening_off_loopback_without_tls_warns(tmp_path: Path, host: str, warned: bool) -> None:
    requestor = Serving(tmp_path, f"{host}:{free_port(HOST)}")
    try:
        warning = f"warning: listening on {host} without TLS"
        assert (warning in requestor.log_text()) is warned, requestor.log_text()
    finally:
        requestor.stop()


@pytest.fixture
def tls_requestor(tmp_path: Path) -> Iterator[tuple[Serving, str, Path]]:
    cert, key = self_signed(tmp_path, "requestor")
    address = f"{HOST}:{free_port(HOST)}"
    requestor = Serving(tmp_path, address, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        yield requestor, address, cert
    finally:
        requestor.stop()


TASK_COMMANDS = {
    "status": ("task", "status", "no-such-task"),
    "abort": ("task", "abort", "no-such-task"),
    "submit": ("task", "submit", "no-such-app"),
}


@pytest.mark.parametrize("command", TASK_COMMANDS.values(), ids=list(TASK_COMMANDS))
def test_task_commands_speak_tls(
    tmp_path: Path, tls_requestor: tuple[Serving, str, Path], command: tuple[str, ...]
) -> None:
    requestor, address, cert = tls_requestor
    data = ["--requestor", address, "--data-dir", str(tmp_path / "data")]

    trusted = taskapi(tmp_path, *command, *data, "--tls-ca", str(cert))
    plain = taskapi(tmp_path, *command, *data)

    # Over TLS the requestor answers (the task or app is unknown); without TLS no call gets through.
    assert trusted.returncode == 1
    assert "Error: NOT_FOUND: unknown " in trusted.stderr, trusted.stderr
    assert plain.returncode == 1
    assert "NOT_FOUND" not in plain.stderr
    assert requestor.running


def test_a_task_command_says_when_the_certificate_does_not_verify(
    tmp_path: Path, tls_requestor: tuple[Serving, str, Path]
) -> None:
    _, address, _ = tls_requestor
    other, _ = self_signed(tmp_path, "someone-else")

    done = taskapi(
        tmp_path,
        "task",
        "status",
        "x",
        "--requestor",
        address,
        "--data-dir",
        str(tmp_path / "data"),
        "--tls-ca",
        str(other),
    )

    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"Error: requestor at {address}: TLS certificate check failed:")
    )
    assert "Traceback" not in done.stderr
