"""Fixtures of the protocol tests: the app under test, an event loop, and a conformance session of the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.conformance.session import Session
from runtime.conformance.wire import Loop

from .apps_under_test import APPS_UNDER_TEST, AppUnderTest
from .harness import protocol_session


@pytest.fixture(params=APPS_UNDER_TEST, ids=lambda app: app.name)
def app(request: pytest.FixtureRequest) -> AppUnderTest:
    value: AppUnderTest = request.param
    return value


@pytest.fixture
def loop() -> Iterator[Loop]:
    runner = Loop()
    yield runner
    runner.close()


@pytest.fixture
def session(app: AppUnderTest, loop: Loop, tmp_path: Path) -> Iterator[Session]:
    """The app's servers under `tmp_path` (requestor under test, honest provider), closed after the test."""
    opened = protocol_session(app, loop, tmp_path)
    try:
        yield opened
    finally:
        opened.close()
