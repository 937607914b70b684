"""A planted bug in a component: tutorialapp's component, but Verify accepts every result unchecked.

Built by tests/conformance/test_components.py with tutorialapp's own component sources (world `app`).
"""

from typing import Any

from wit_world.imports import types  # type: ignore[import-not-found]

from apps.tutorialapp import component

Provider = component.Provider


class Requestor(component.Requestor):
    def verify(self, request: Any) -> Any:
        return types.VerifyReply(types.VerifyResult.SUCCESS, "")
