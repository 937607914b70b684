"""The Cycles device that rendered a task's parts reaches `taskapi task status`: as an operator runs it
(`taskapi requestor serve`, `taskapi provider join --env docker_cpu`, `taskapi task submit blenderapp`),
blenderapp reports each accepted part's device with its Verify reply (apps/sdk/result_info.py), the node
keeps it, and the status names it, as JSON and as text."""

from __future__ import annotations

from pathlib import Path

from tests.node.cluster import Cluster

from .test_blenderapp_scenes import blender_image

__all__ = ["blender_image"]  # the fixture, used by name below


def test_task_status_names_the_device_that_rendered_the_parts(blender_image: str, tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        requestor = cluster.requestor()
        cluster.provider("renderer", requestor, env="docker_cpu", capacity=2)
        params = {"resolution": "64x48", "samples": 2, "parts": 2}
        task_id = requestor.submit("blenderapp", "docker_cpu", params)
        final = requestor.wait_for_task(task_id)
        assert final.state == "finished", final.reason
        assert dict(final.result_info) == {"device": "CPU"}
        assert requestor.status(task_id)["result_info"] == {"device": "CPU"}
        assert "device: CPU" in requestor.cli("task", "status", task_id).splitlines()
    finally:
        cluster.close()
