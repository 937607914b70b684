"""Input files uploaded with the submit form land in the task's task_inputs/ before its CreateTask."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from runtime.dashboard.requestor_app import start_requestor_dashboard
from runtime.node.requestor import RequestorNode

TOKEN = "the-control-token-for-inputs"


async def _submit_with_inputs(data_dir: Path, files: dict[str, bytes]) -> tuple[str, dict[str, bytes]]:
    """Submit a small mandelbrot task with `files` as inputs; (task id, the files in its task_inputs/)."""
    node = RequestorNode(data_dir)
    await node.start()
    server = await start_requestor_dashboard(node, "127.0.0.1", 0, TOKEN, reports_dir=data_dir / "reports")
    origin = server.url.rstrip("/")
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            await session.post(server.url + "login", data={"token": TOKEN}, headers={"Origin": origin})
            async with session.get(server.url + "api/session") as reply:
                csrf = (await reply.json())["csrf"]
            form = aiohttp.FormData({"app": "mandelbrot", "params": json.dumps({"width": 8, "height": 8})})
            for name, content in files.items():
                form.add_field("inputs", content, filename=name)
            headers = {"Origin": origin, "X-CSRF-Token": csrf}
            async with session.post(server.url + "api/tasks", data=form, headers=headers) as reply:
                assert reply.status == 200, await reply.text()
                task_id = str((await reply.json())["task_id"])
        task_dir = node.task_dir(task_id)
        assert task_dir is not None
        found = {
            str(path.relative_to(task_dir.task_inputs)): path.read_bytes()
            for path in task_dir.task_inputs.rglob("*")
            if path.is_file()
        }
        return task_id, found
    finally:
        await server.close()
        await node.stop()


def test_uploaded_inputs_are_in_the_task_inputs(tmp_path: Path) -> None:
    files = {"notes.txt": b"hello", "scene.blend": bytes(range(256)) * 64}
    task_id, found = asyncio.run(_submit_with_inputs(tmp_path / "data", files))
    assert task_id.startswith("mandelbrot-")
    assert found == files
