"""Hostile .blend files for blenderapp's render worker (Blender 4.5 as `bpy`, in a hardened docker_cpu
container): Python a scene carries must not run when a part is rendered.

Each case saves a .blend with bpy itself, carrying Python meant to write a marker file into the work dir,
then renders it through the worker as a provider would. It asserts: the render still succeeds (the worker
is healthy and answers the next job), and the marker was never written.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from environments.docker import DockerConfig, DockerCpuEnvironment, DockerLimits
from environments.docker.images import release_name
from environments.status import RuntimeStatus
from tests.docker_environment.conftest import require_engine_and_images
from tests.docker_environment.support import python, run_sync

PAYLOAD = "open('/golem/work/ran-{case}', 'w').write('x')"

HOSTILE = {
    # A text block registered to run whenever the file is loaded.
    "registered text block": """
text = bpy.data.texts.new("evil.py")
text.write(PAYLOAD)
text.use_module = True
""",
    # A frame-change handler saved with the file (persistent handlers are not stored; the text is).
    "handler in a text block": """
text = bpy.data.texts.new("handler.py")
text.write("import bpy\\nbpy.app.handlers.frame_change_pre.append(lambda *a: " + PAYLOAD + ")\\n" + PAYLOAD)
text.use_module = True
bpy.context.scene.frame_set(2)
""",
}

MAKE = """
import bpy
PAYLOAD = {payload!r}
bpy.ops.wm.read_factory_settings(use_empty=False)
{setup}
bpy.ops.wm.save_as_mainfile(filepath="/golem/work/hostile.blend")
"""

PROBE = """
import asyncio, json, subprocess, sys
from pathlib import Path
from apps.blenderapp import render as r
from apps.blenderapp.regions import Box

# The file is made by another Python (bpy may run its own drivers while making it: that is not the worker).
subprocess.run([sys.executable, "-c", {make!r}], check=False)
marker = Path("/golem/work/ran-{case}")
marker.unlink(missing_ok=True)

async def main():
    outcomes = []
    for name, scene in (("hostile", Path("/golem/work/hostile.blend")), ("next", r.SAMPLE_SCENE)):
        job = r.RenderJob.one(scene, 1, (32, 24), 1, 0, Box(0, 0, 32, 24), Path(f"/golem/work/{{name}}.png"))
        try:
            outcomes.append((await r.render(job, 300)).device)
        except r.RenderFailed as exc:
            outcomes.append(str(exc)[:300])
    print(json.dumps({{"outcomes": outcomes}}))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def blender_env() -> DockerCpuEnvironment:
    require_engine_and_images("blenderapp")
    config = DockerConfig(
        repositories=frozenset({"taskapi/blenderapp"}), limits=DockerLimits(wall_time_s=300)
    )
    env = DockerCpuEnvironment(config)
    asyncio.run(env.prepare())
    return env


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_python_in_a_blend_never_runs_when_it_is_rendered(
    blender_env: DockerCpuEnvironment, case: str, tmp_path: Path
) -> None:
    slug = case.replace(" ", "-")
    payload = PAYLOAD.format(case=slug)
    make = MAKE.format(payload=payload, setup=HOSTILE[case])
    code = PROBE.format(make=make, case=slug)
    runtime, status, logs = run_sync(blender_env, python(release_name("blenderapp"), code, work_dir=tmp_path))
    assert status is RuntimeStatus.STOPPED and runtime.exit_code == 0, logs
    result = json.loads(logs.strip().splitlines()[-1])
    assert (tmp_path / "hostile.blend").is_file(), logs
    assert result["outcomes"] == ["CPU", "CPU"], result  # the hostile file rendered, and so did the next job
    assert not (tmp_path / f"ran-{slug}").exists(), f"{case}: the scene's Python ran during the render"
