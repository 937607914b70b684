from __future__ import annotations

from collections.abc import Iterator

import pytest

from .apps_under_test import APPS_UNDER_TEST, AppUnderTest
from .harness import Loop


@pytest.fixture(params=APPS_UNDER_TEST, ids=lambda app: app.name)
def app(request: pytest.FixtureRequest) -> AppUnderTest:
    value: AppUnderTest = request.param
    return value


@pytest.fixture
def loop() -> Iterator[Loop]:
    runner = Loop()
    yield runner
    runner.close()
