"""The requestor's dashboard: tasks, a task's subtasks and live preview, providers, submitting, conformance
reports and throughput. Runs on the node's own event loop; reads the node directly, changes it only through
its control methods (submit_task, abort_task)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from runtime.dashboard import requestor_view as view
from runtime.dashboard.access import Access, is_loopback
from runtime.dashboard.preview import Part, compose
from runtime.dashboard.server import DashboardServer, base_app, page, serve, stream
from runtime.node.errors import NodeError
from runtime.node.requestor import RequestorNode

PAGES = ("/tasks", "/tasks/{task_id}", "/providers", "/submit", "/conformance", "/throughput")
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
"""The largest submit request (its parameter file and input files together)."""
MAX_PARAMS_FILE_BYTES = 1024 * 1024
CHUNK_BYTES = 64 * 1024


class RequestorDashboard:
    """Routes of the requestor's dashboard over one node."""

    def __init__(self, node: RequestorNode, reports_dir: Path) -> None:
        self.node = node
        self.reports_dir = reports_dir
        self._previews: dict[str, tuple[tuple[str, ...], bytes]] = {}

    def routes(self, app: web.Application) -> None:
        for path in PAGES:
            app.router.add_get(path, page("requestor.html"))
        app.router.add_get("/api/apps", self.apps)
        app.router.add_get("/api/stream", self.stream)
        app.router.add_post("/api/tasks", self.submit)
        app.router.add_post("/api/tasks/{task_id}/abort", self.abort)
        app.router.add_get("/api/tasks/{task_id}/preview.png", self.preview)
        app.router.add_get("/api/tasks/{task_id}/outputs/{name:.+}", self.output)

    async def apps(self, request: web.Request) -> web.Response:
        return web.json_response(view.apps(self.node))

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events of one view: ?view=tasks|task|providers|conformance|throughput (&task_id=)."""
        name = request.query.get("view", "")
        if name == "task":
            task_id = request.query.get("task_id", "")
            if self.node.store.task(task_id) is None:
                raise web.HTTPNotFound(text=f"unknown task {task_id!r}")
            return await stream(request, lambda: view.task(self.node, task_id))
        snapshots = {
            "tasks": lambda: view.tasks(self.node),
            "providers": lambda: view.providers(self.node),
            "conformance": lambda: view.reports(self.reports_dir),
            "throughput": lambda: view.throughput(self.node),
        }
        if name not in snapshots:
            raise web.HTTPBadRequest(text=f"unknown view {name!r}; views: task, {', '.join(snapshots)}")
        return await stream(request, snapshots[name])

    async def submit(self, request: web.Request) -> web.Response:
        """A task from the submit form (multipart): app, env, params (JSON), params_file, max_subtasks, and
        input files (`inputs`, any number) placed in the task's task_inputs/ by their file names."""
        form = await request.post()
        try:
            app, env, params, max_subtasks = _submission(form)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        try:
            input_ids = [await self._receive(upload) for upload in form.getall("inputs", [])]
            task_id = await self.node.submit_task(app, env, params, max_subtasks, input_ids)
        except NodeError as exc:
            raise web.HTTPBadRequest(text=exc.message) from exc
        return web.json_response({"task_id": task_id})

    async def _receive(self, upload: object) -> str:
        """Hand one uploaded input file to the node (which checks its name, size and sha256)."""
        if not isinstance(upload, web.FileField):
            raise web.HTTPBadRequest(text="the inputs field takes files only")
        data = upload.file.read()

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), CHUNK_BYTES):
                yield data[start : start + CHUNK_BYTES]

        digest = hashlib.sha256(data).hexdigest()
        return await self.node.receive_input(upload.filename, len(data), digest, chunks())

    async def abort(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        try:
            await self.node.abort_task(task_id, "aborted from the dashboard")
        except NodeError as exc:
            raise web.HTTPNotFound(text=exc.message) from exc
        return web.json_response({"task_id": task_id, "state": "aborted"})

    async def preview(self, request: web.Request) -> web.Response:
        """The accepted parts of an image task in place, as PNG (404 while none is accepted)."""
        task_id = request.match_info["task_id"]
        row = self.node.store.task(task_id)
        task_dir = self.node.task_dir(task_id) if row is not None else None
        if row is None or task_dir is None:
            raise web.HTTPNotFound(text=f"no preview of task {task_id!r}")
        accepted = [
            s
            for s in self.node.store.subtasks(task_id=task_id, states=("accepted",))
            if s.replica_of is None and s.result_name
        ]
        key = tuple(s.subtask_id for s in accepted)
        cached = self._previews.get(task_id)
        if cached is None or cached[0] != key:
            parts = [
                Part(
                    json.loads(s.params_json), task_dir.subtask_outputs(s.subtask_id) / (s.result_name or "")
                )
                for s in accepted
            ]
            image = await asyncio.to_thread(compose, row.app, parts)
            if image is None:
                raise web.HTTPNotFound(text=f"no preview of task {task_id!r} yet")
            self._previews[task_id] = cached = (key, image)
        return web.Response(
            body=cached[1],
            content_type="image/png",
            headers={"Cache-Control": "no-store", "X-Parts": str(len(key))},
        )

    async def output(self, request: web.Request) -> web.FileResponse:
        """A file of a finished task's outputs, by one of the names its status lists (nothing else)."""
        task_id, name = request.match_info["task_id"], request.match_info["name"]
        try:
            status = self.node.task_status(task_id)
        except NodeError as exc:
            raise web.HTTPNotFound(text=exc.message) from exc
        if name not in status.outputs:
            raise web.HTTPNotFound(text=f"task {task_id} has no output {name!r}")
        return web.FileResponse(
            Path(status.outputs_dir) / name,
            headers={"Content-Disposition": f'attachment; filename="{Path(name).name}"'},
        )


def _submission(form: MultiDictProxy[Any]) -> tuple[str, str | None, dict[str, Any], int]:
    """(app, env, params, max_subtasks) of a submit form; ValueError names what is wrong.

    Parameters come from the form's `params` (a JSON object of the fields filled in) and the optional
    `params_file` (a JSON object); the file's values win over the fields'."""
    app = str(form.get("app", "")).strip()
    if not app:
        raise ValueError("no app chosen")
    env = str(form.get("env", "")).strip() or None
    params = _json_object("the params field", str(form.get("params", "") or "{}"))
    upload = form.get("params_file")
    if isinstance(upload, web.FileField):
        data = upload.file.read(MAX_PARAMS_FILE_BYTES + 1)
        if len(data) > MAX_PARAMS_FILE_BYTES:
            raise ValueError(f"parameter file {upload.filename!r} exceeds {MAX_PARAMS_FILE_BYTES} bytes")
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            raise ValueError(f"parameter file {upload.filename!r} is not UTF-8 text") from exc
        params.update(_json_object(f"parameter file {upload.filename!r}", text))
    max_subtasks_text = str(form.get("max_subtasks", "") or "10000")
    if not max_subtasks_text.isdigit() or int(max_subtasks_text) < 1:
        raise ValueError(f"max_subtasks must be a positive integer, got {max_subtasks_text!r}")
    return app, env, params, int(max_subtasks_text)


def _json_object(what: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


async def start_requestor_dashboard(
    node: RequestorNode,
    host: str,
    port: int,
    token: str,
    *,
    reports_dir: Path,
    tls: ssl.SSLContext | None = None,
) -> DashboardServer:
    """Serve the requestor's dashboard on host:port (0: a free port), logged in with `token`."""
    access = Access(token, loopback_only=is_loopback(host), secure_cookie=tls is not None)
    app = base_app(access, "requestor.html", MAX_UPLOAD_BYTES)
    RequestorDashboard(node, reports_dir).routes(app)
    return await serve(app, host, port, tls)
