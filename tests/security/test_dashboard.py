"""Hostile requests to the requestor's dashboard (a real aiohttp server on a real socket, a real node).

Each case asserts the named refusal, that the dashboard still serves its login page afterwards, and that
nothing of the data dir (the store, the tokens) came back in the answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from runtime.dashboard.requestor_app import MAX_PARAMS_FILE_BYTES, MAX_UPLOAD_BYTES, start_requestor_dashboard
from runtime.node.requestor import RequestorNode

TOKEN = "the-control-token-0123456789abcdef"

Scenario = Callable[[aiohttp.ClientSession, str, dict[str, str]], Awaitable[aiohttp.ClientResponse]]


async def _dashboard_run(data_dir: Path, scenario: Scenario) -> tuple[int, str, int]:
    """(status, body) of the hostile request, and the login page's status afterwards."""
    node = RequestorNode(data_dir)
    server = await start_requestor_dashboard(node, "127.0.0.1", 0, TOKEN, reports_dir=data_dir / "reports")
    origin = server.url.rstrip("/")
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.post(
                server.url + "login", data={"token": TOKEN}, headers={"Origin": origin}
            ) as r:
                assert r.status == 200  # redirected to the tasks page
            async with session.get(server.url + "api/session") as r:
                csrf = (await r.json())["csrf"]
            headers = {"Origin": origin, "X-CSRF-Token": csrf}
            answer = await scenario(session, server.url, headers)
            body = await answer.text()
            async with aiohttp.ClientSession() as fresh, fresh.get(server.url + "login") as after:
                return answer.status, body, after.status
    finally:
        await server.close()
        await node.stop()


def run(tmp_path: Path, scenario: Scenario) -> tuple[int, str]:
    status, body, after = asyncio.run(_dashboard_run(tmp_path / "data", scenario))
    assert after == 200, "the dashboard stopped serving after the hostile request"
    assert TOKEN not in body and "SQLite format" not in body
    return status, body


def post(
    path: str, *, drop: tuple[str, ...] = (), extra: dict[str, str] | None = None, **kwargs: Any
) -> Scenario:
    async def scenario(
        session: aiohttp.ClientSession, url: str, headers: dict[str, str]
    ) -> aiohttp.ClientResponse:
        sent = {k: v for k, v in headers.items() if k not in drop} | (extra or {})
        return await session.post(url + path, headers=sent, **kwargs)

    return scenario


def get(path: str, *, cookies: bool = True, extra: dict[str, str] | None = None) -> Scenario:
    async def scenario(
        session: aiohttp.ClientSession, url: str, headers: dict[str, str]
    ) -> aiohttp.ClientResponse:
        if not cookies:
            session.cookie_jar.clear()
        return await session.get(url + path, headers=extra or {})

    return scenario


FORM = {"app": "mandelbrot", "params": json.dumps({"width": 8, "height": 8})}


@pytest.mark.parametrize(
    ("scenario", "status", "says"),
    [
        (post("api/tasks", drop=("Origin",), data=FORM), 403, "cross-site request refused"),
        (
            post("api/tasks", extra={"Origin": "http://evil.example"}, data=FORM),
            403,
            "cross-site request refused",
        ),
        (post("api/tasks", extra={"Origin": "null"}, data=FORM), 403, "cross-site request refused"),
        (post("api/tasks", drop=("X-CSRF-Token",), data=FORM), 403, "X-CSRF-Token"),
        (post("api/tasks", extra={"X-CSRF-Token": "guessed"}, data=FORM), 403, "X-CSRF-Token"),
        (post("api/tasks/some-task/abort", drop=("X-CSRF-Token",)), 403, "X-CSRF-Token"),
        (post("logout", drop=("X-CSRF-Token",)), 403, "X-CSRF-Token"),
        (post("login", extra={"Origin": "http://evil.example"}, data={"token": TOKEN}), 403, "cross-site"),
    ],
    ids=[
        "no-origin",
        "foreign-origin",
        "null-origin",
        "no-csrf",
        "wrong-csrf",
        "abort-no-csrf",
        "logout-no-csrf",
        "login-from-elsewhere",
    ],
)
def test_state_changing_requests_need_the_origin_and_the_csrf_token(
    tmp_path: Path, scenario: Scenario, status: int, says: str
) -> None:
    got, body = run(tmp_path, scenario)
    assert (got, says in body) == (status, True), body


@pytest.mark.parametrize(
    "path",
    ["api/apps", "api/session", "api/stream?view=tasks", "api/tasks/x/preview.png", "api/tasks/x/outputs/a"],
)
def test_without_a_session_the_api_answers_401(tmp_path: Path, path: str) -> None:
    got, body = run(tmp_path, get(path, cookies=False))
    assert got == 401 and "log in first" in body


@pytest.mark.parametrize(
    "name",
    [
        "../requestor.sqlite",
        "..%2frequestor.sqlite",
        "%2e%2e/%2e%2e/control-token",
        "/etc/passwd",
        "a/../../requestor.sqlite",
    ],
)
def test_outputs_serve_only_the_names_a_task_lists(tmp_path: Path, name: str) -> None:
    got, _ = run(tmp_path, get(f"api/tasks/nonexistent/outputs/{name}"))
    assert got in (404, 400)


def test_a_rebinding_host_name_gets_nothing(tmp_path: Path) -> None:
    got, body = run(tmp_path, get("login", extra={"Host": "evil.example"}))
    assert got == 421 and "loopback names only" in body


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        ({"params": "{}"}, 400, "no app chosen"),
        ({**FORM, "params": "[1"}, 400, "not JSON"),
        ({**FORM, "params": "[1, 2]"}, 400, "must be a JSON object"),
        ({**FORM, "max_subtasks": "-3"}, 400, "max_subtasks must be a positive integer"),
        ({**FORM, "app": "no-such-app"}, 400, "no-such-app"),
    ],
    ids=["no-app", "params-not-json", "params-not-object", "bad-max-subtasks", "unknown-app"],
)
def test_a_bad_submission_is_refused_naming_what_is_wrong(
    tmp_path: Path, data: dict[str, str], status: int, says: str
) -> None:
    got, body = run(tmp_path, post("api/tasks", data=data))
    assert (got, says in body) == (status, True), body


def _upload(size: int, field: str = "params_file") -> aiohttp.FormData:
    form = aiohttp.FormData(FORM)
    form.add_field(field, b"{" + b" " * size + b"}", filename="params.json")
    return form


@pytest.mark.parametrize(
    ("size", "status", "says"),
    [(MAX_PARAMS_FILE_BYTES + 1, 400, "exceeds"), (MAX_UPLOAD_BYTES + 1, 413, "maximum request body size")],
    ids=["parameter-file-too-big", "request-too-big"],
)
def test_uploads_are_size_limited(tmp_path: Path, size: int, status: int, says: str) -> None:
    got, body = run(tmp_path, post("api/tasks", data=_upload(size)))
    assert got == status and says in body.lower(), body


def _with_input(name: str, content: bytes = b"input") -> tuple[bytes, str]:
    """A multipart body naming the input file exactly `name` (aiohttp's FormData would percent-encode it,
    as a hostile client need not)."""
    boundary = "hostile-boundary-1f0e"
    parts = [
        f'Content-Disposition: form-data; name="{key}"\r\n\r\n{value}'.encode() for key, value in FORM.items()
    ]
    header = f'Content-Disposition: form-data; name="inputs"; filename="{name}"\r\n'
    parts.append(header.encode() + b"Content-Type: application/octet-stream\r\n\r\n" + content)
    body = b"".join(f"--{boundary}\r\n".encode() + part + b"\r\n" for part in parts)
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    ("name", "says"),
    [("../escape.txt", "input"), ("a/../../escape.txt", "input"), ("", "the inputs field takes files only")],
)
def test_an_input_file_name_that_could_leave_task_inputs_is_refused(
    tmp_path: Path, name: str, says: str
) -> None:
    body, content_type = _with_input(name)
    got, answer = run(tmp_path, post("api/tasks", data=body, extra={"Content-Type": content_type}))
    assert got == 400 and says in answer, answer
    assert not list(tmp_path.rglob("escape.txt"))


@pytest.mark.parametrize(("name", "landed"), [("/etc/passwd", "etc/passwd"), ("a\\..\\b", "a..b")])
def test_an_input_name_aiohttp_rewrites_stays_inside_task_inputs(
    tmp_path: Path, name: str, landed: str
) -> None:
    """aiohttp's multipart parser drops a leading '/' and backslash escapes; what remains is a name inside."""
    body, content_type = _with_input(name)
    got, answer = run(tmp_path, post("api/tasks", data=body, extra={"Content-Type": content_type}))
    assert got == 200, answer
    placed = [path for path in tmp_path.rglob("*") if path.is_file() and path.read_bytes() == b"input"]
    assert placed and all(str(path).endswith(f"task_inputs/{landed}") for path in placed), placed
