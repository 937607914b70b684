from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Real node processes under tmp_path; stopped afterwards, their logs printed (shown on failure)."""
    nodes = Cluster(tmp_path)
    try:
        yield nodes
    finally:
        nodes.close()
        print(nodes.logs())
