"""No module outside environments/ tests an environment id: the node asks the registry for an
environment's declared capabilities (environments/registry.py `capabilities`) instead.

The grep covers every Python file under runtime/ and apps/ (descriptor data, descriptor.json, is not
Python). The modules below name environment ids for a reason of their own, not to test one; the list may
only shrink: a module on it that no longer names an id fails the test too.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEARCHED = ("runtime", "apps")
ENV_ID_LITERAL = re.compile(r"""(["'])(wasm|docker_cpu|docker_gpu|local)\1""")

NOT_YET_BEHIND_THE_REGISTRY = {
    # An app's CreateTask reply names the environment its providers compute in (Golem's protocol): the
    # app, not the node, says which of its builds a task is for.
    "apps/tutorialapp/requestor.py": "the app names the environment of its docker build in CreateTask",
    "apps/blenderapp/requestor.py": "the app names the environments of its docker builds in CreateTask",
}


def naming_files() -> dict[str, list[str]]:
    """Every searched Python file that names an environment id, with the lines that do."""
    found: dict[str, list[str]] = {}
    for top in SEARCHED:
        for path in sorted((ROOT / top).rglob("*.py")):
            lines = [
                f"{number}: {line.strip()}"
                for number, line in enumerate(path.read_text().splitlines(), 1)
                if ENV_ID_LITERAL.search(line)
            ]
            if lines:
                found[str(path.relative_to(ROOT))] = lines
    return found


def test_no_new_module_outside_environments_tests_an_environment_id() -> None:
    offenders = {
        path: lines for path, lines in naming_files().items() if path not in NOT_YET_BEHIND_THE_REGISTRY
    }
    assert not offenders, f"ask environments.registry.capabilities() instead: {offenders}"


def test_the_list_of_modules_still_naming_ids_only_shrinks() -> None:
    stale = sorted(set(NOT_YET_BEHIND_THE_REGISTRY) - set(naming_files()))
    assert not stale, f"these no longer name an environment id: take them off the list: {stale}"
