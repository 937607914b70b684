"""App ids: the sha256 of a descriptor's canonical JSON.

The canonical form is the validated descriptor with every field equal to its default left out, keys sorted,
no whitespace, UTF-8. So writing a default out or leaving it implicit gives the same id, formatting and key
order do not matter, and any change of content (a new module hash, a new version) gives a new id.
"""

from __future__ import annotations

import hashlib
import json

from runtime.appmanager.descriptor import DescriptorBase


def canonical_json(descriptor: DescriptorBase) -> bytes:
    """The bytes an app id is the hash of."""
    data = descriptor.model_dump(mode="json", exclude_defaults=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def app_id(descriptor: DescriptorBase) -> str:
    """The app id of a descriptor: 64 lowercase hex digits."""
    return hashlib.sha256(canonical_json(descriptor)).hexdigest()
