"""The docker_cpu environment: payloads are containers of locally present, whitelisted images.

    env = DockerCpuEnvironment(DockerConfig(repositories=frozenset({"taskapi/tutorialapp"})))
    await env.prepare()
    runtime = env.runtime(DockerRun(image="taskapi/tutorialapp:0.1.0", command=("provider", "50051")))
    await runtime.prepare(); await runtime.start(); await runtime.wait(); await runtime.clean_up()
    await env.clean_up()

No registry is reachable, so images are never pulled: they are built by `scripts/setup_docker`
(`environments.docker.images`). An image is allowed when its repository or its image id (the sha256 of
its config, which is what "digest" means for a locally built image) is on the config's whitelist;
anything else is refused with `PrerequisitesRefused` saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from pydantic import Field

from environments.app_serving import AppPayload
from environments.base import (
    BenchmarkResult,
    Capabilities,
    EnvConfig,
    Environment,
    PayloadKind,
    Prerequisites,
    PrerequisitesRefused,
    Support,
    prerequisites_of,
)
from environments.docker.engine import APP_NETWORK, Engine, engine_support
from environments.docker.owner import OWNER_LABEL, is_gone
from environments.docker.runtime import DockerRuntime
from environments.docker.spec import LABEL, DockerLimits, DockerRun, GpuPassthrough
from environments.status import RuntimeStatus

if TYPE_CHECKING:
    from environments.docker.app_server import DockerAppServing

log = logging.getLogger(__name__)

PROJECT_REPOSITORIES = frozenset({"taskapi/tutorialapp", "taskapi/blenderapp"})
"""The project's own app images, allowed by default."""

BENCHMARK_ITERATIONS = 3_000_000
BENCHMARK_SCRIPT = (
    "x = 88172645463325252\n"
    f"for _ in range({BENCHMARK_ITERATIONS}):\n"
    "    x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF; x ^= x >> 7; x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF\n"
)
"""The fixed benchmark: xorshift64 in the image's Python (the same kernel as the wasm benchmark)."""


class DockerPrerequisites(Prerequisites):
    """A docker app needs one image: repository, tag, and its digest (image id) once known."""

    image: str = Field(min_length=1)
    tag: str = "latest"
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")

    @property
    def reference(self) -> str:
        return f"{self.image}:{self.tag}"


class DockerConfig(EnvConfig):
    """Settings of the docker environments."""

    base_url: str | None = Field(
        default=None, description="engine address; default DOCKER_HOST or the socket"
    )
    repositories: frozenset[str] = Field(
        default=PROJECT_REPOSITORIES, description="image repositories allowed (any tag)"
    )
    digests: frozenset[str] = Field(default=frozenset(), description="image ids allowed (sha256:...)")
    limits: DockerLimits = Field(default_factory=DockerLimits, description="limits of runs that set none")
    app_network: str = Field(default=APP_NETWORK, description="internal network of app servers")
    benchmark_image: str | None = Field(default=None, description="image with python3 for benchmark()")


def split_reference(reference: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of `repo[:tag][@sha256:...]` (a port in a registry host is no tag)."""
    name, _, digest = reference.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :], digest or None
    return name, None, digest or None


class DockerEnvironment(Environment[DockerRun, DockerPrerequisites, DockerConfig]):
    """Containers on a Docker engine; subclasses say whether and how they get GPUs."""

    env_id = "docker_cpu"
    declared_capabilities = Capabilities(deterministic=False, metered=False, network=True, serves_apps=True)
    payload_kind = PayloadKind.CONTAINER_IMAGE
    setup_hint = (
        "start a Docker engine: `scripts/setup_docker` in a taskapi clone (installs and starts one, as root),"
        " or `sudo dockerd &`; DOCKER_HOST names a remote one"
    )
    prerequisites_type = DockerPrerequisites

    def __init__(self, config: DockerConfig | None = None) -> None:
        super().__init__(config or DockerConfig())
        self._engine: Engine | None = None
        self._deferred: set[asyncio.Task[Any]] = set()
        self.containers: set[str] = set()
        """Ids of containers this environment created and has not removed yet (removed at clean_up)."""

    @classmethod
    def support(cls) -> Support:
        return engine_support()

    @classmethod
    def app_serving(cls, payload: AppPayload) -> DockerAppServing:
        """The build's servers: containers of its image's entrypoint (`DockerAppServer`) on an environment
        of this class admitting only that image (by repository, and digest when the build pins one)."""
        from environments.docker.app_server import DockerAppServing  # it builds on this module

        prerequisites = prerequisites_of(DockerPrerequisites, payload)
        config = DockerConfig(
            repositories=frozenset({prerequisites.image}),
            digests=frozenset({prerequisites.digest} if prerequisites.digest else ()),
        )
        return DockerAppServing(cls(config), prerequisites.reference)

    @property
    def engine(self) -> Engine:
        self.require_enabled()
        assert self._engine is not None
        return self._engine

    @property
    def app_network(self) -> str:
        return self.config.app_network

    def gpu_passthrough(self) -> GpuPassthrough | None:
        """How containers get GPUs (None: they do not)."""
        return None

    async def _prepare(self) -> None:
        engine = Engine(self.config.base_url)
        try:
            await engine.call(engine.client.ping)
            await engine.call(remove_orphans, engine)
        except Exception:
            engine.close()
            raise
        self._engine = engine

    def defer(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run `work` (a teardown) off the caller's path; `clean_up()` waits for whatever is still running."""
        task = asyncio.ensure_future(work)
        self._deferred.add(task)
        task.add_done_callback(self._deferred.discard)

    async def settle(self) -> None:
        """Wait for every deferred teardown."""
        while self._deferred:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._deferred, return_exceptions=True)

    async def _clean_up(self) -> None:
        await self.settle()
        if self._engine is not None:
            await self._engine.call(self._remove_leftovers)
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    def _remove_leftovers(self) -> None:
        """Remove containers whose teardown never ran (e.g. its event loop ended first)."""
        import docker

        assert self._engine is not None
        for container_id in list(self.containers):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self._engine.client.api.remove_container(container_id, force=True)
            self.containers.discard(container_id)

    async def ensure_app_network(self) -> str:
        """Create the internal app network (no egress, no traffic between containers) if it is missing."""
        return await self.engine.call(self.engine.ensure_app_network, self.app_network)

    def allowed(self, repository: str, image_id: str | None) -> bool:
        """Whether the whitelist allows an image of `repository` with this image id."""
        return repository in self.config.repositories or (
            image_id is not None and image_id in self.config.digests
        )

    async def check_image(self, reference: str, digest: str | None = None) -> Any:
        """The local image of `reference` if it is whitelisted, present and (given a digest) that exact image;
        else `PrerequisitesRefused` saying which of these failed."""
        import docker

        repository, _, pinned = split_reference(reference)
        try:
            image = await self.engine.call(self.engine.client.images.get, reference)
        except docker.errors.ImageNotFound:
            image = None
        image_id = None if image is None else str(image.id)
        if not self.allowed(repository, image_id):
            raise PrerequisitesRefused(
                f"image {reference} is not whitelisted in {self.env_id}: allowed repositories "
                f"{sorted(self.config.repositories) or 'none'}, allowed image ids {len(self.config.digests)}"
            )
        if image is None:
            raise PrerequisitesRefused(
                f"image {reference} is not on this machine and no registry is reachable: build it with "
                "scripts/setup_docker"
            )
        wanted = digest or pinned
        if wanted is not None and wanted != image_id and wanted not in _repo_digests(image):
            raise PrerequisitesRefused(f"image {reference} is {image_id}, not the required {wanted}")
        return image

    async def install_prerequisites(self, prerequisites: DockerPrerequisites) -> None:
        """Check the image is whitelisted and present (never pulled: there is no registry)."""
        await self.check_image(prerequisites.reference, prerequisites.digest)

    async def image_id(self, reference: str) -> str:
        """The image id (sha256 of its config) of a local image."""
        image = await self.engine.call(self.engine.client.images.get, reference)
        return str(image.id)

    def runtime(self, payload: DockerRun, config: DockerConfig | None = None) -> DockerRuntime:
        """A runtime for one container; `config` supplies the limits when the payload sets none."""
        limits = payload.limits or (config or self.config).limits
        return DockerRuntime(self, payload, limits)

    async def benchmark(self) -> BenchmarkResult:
        """The fixed xorshift kernel in a container; score = million iterations per wall-clock second."""
        image = self.config.benchmark_image
        if image is None:
            from environments.docker.images import release_name

            image = release_name("tutorialapp")
        run = DockerRun(image=image, entrypoint=("python3", "-c", BENCHMARK_SCRIPT), name_hint="benchmark")
        runtime = self.runtime(run)
        began = time.monotonic()
        try:
            await runtime.prepare()
            await runtime.start()
            status = await runtime.wait()
            elapsed = time.monotonic() - began
            if status is not RuntimeStatus.STOPPED:
                raise RuntimeError(f"the docker benchmark failed: {runtime.failure_reason}")
            return BenchmarkResult(score=BENCHMARK_ITERATIONS / elapsed / 1e6, usage=runtime.usage())
        finally:
            if runtime.status() is not RuntimeStatus.TORN_DOWN:
                await runtime.clean_up()


def remove_orphans(engine: Engine) -> None:
    """Remove the containers of node processes that died without removing them (`owner.py`)."""
    import docker

    for container in engine.client.containers.list(all=True, filters={"label": LABEL}):
        if is_gone(container.labels.get(OWNER_LABEL, "")):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True)
                log.warning("removed container %s: the node process that made it is gone", container.short_id)


class DockerCpuEnvironment(DockerEnvironment):
    """docker_cpu: containers without GPUs."""

    env_id = "docker_cpu"


def _repo_digests(image: Any) -> set[str]:
    return {entry.partition("@")[2] for entry in image.attrs.get("RepoDigests", [])}
