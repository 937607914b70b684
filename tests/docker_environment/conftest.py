"""Fixtures: a real Docker engine (scripts/setup_docker starts one and builds the images), an enabled
docker_cpu environment whose whitelist holds the project's images, and the base image's name."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from environments.docker import DockerConfig, DockerCpuEnvironment, DockerLimits
from environments.docker.engine import engine_support
from environments.docker.images import full_name, image_exists, release_name

REPOSITORIES = frozenset({"taskapi/base", "taskapi/tutorialapp", "taskapi/blenderapp"})


def require_engine_and_images(*names: str) -> None:
    """Fail (never skip) when the engine or an image is missing: CI runs scripts/setup_docker first."""
    support = engine_support()
    if not support.supported:
        pytest.fail(f"docker tests need an engine: run scripts/setup_docker ({support.reason})")
    for name in names:
        reference = full_name(name)
        if not image_exists(reference):
            pytest.fail(f"image {reference} is missing: run scripts/setup_docker")


def make_environment(**config: object) -> DockerCpuEnvironment:
    """An enabled docker_cpu environment allowing the project's images (plus `config` overrides)."""
    settings = {"repositories": REPOSITORIES, "limits": DockerLimits(wall_time_s=120), **config}
    env = DockerCpuEnvironment(DockerConfig.model_validate(settings))
    asyncio.run(env.prepare())
    return env


@pytest.fixture(scope="session")
def base_image() -> str:
    """The debootstrapped base image (python3, a shell, coreutils)."""
    require_engine_and_images("base")
    return full_name("base")


@pytest.fixture(scope="session")
def tutorial_image() -> str:
    require_engine_and_images("tutorialapp")
    return release_name("tutorialapp")


@pytest.fixture(scope="session")
def docker_env(base_image: str) -> Iterator[DockerCpuEnvironment]:
    """One enabled docker_cpu environment for the whole session."""
    env = make_environment()
    yield env
    asyncio.run(env.clean_up())
