"""Provider identity on the node protocol: one Ed25519 key per provider, and every call signed with it.

A provider's id is not something it claims: it is derived from its public key (`provider_id_of`), and
the requestor learns it from the signature on each call, never from a message field. The shared provider
token stays the admission ticket (who may join at all); the key says *which* provider is calling, so one
provider holding the token cannot act as another.

A signed call carries four metadata entries (`taskapi-key-bin`, `taskapi-time-ms`, `taskapi-nonce-bin`,
`taskapi-signature-bin`); the signature covers the method path, the time, the nonce and a digest of the
call's `authorization` value. The requestor (`SignedCalls`) accepts a call only inside a freshness window
around its own clock and only once per (key, nonce). The message bodies are not signed: against someone
who can rewrite traffic in flight, TLS is the defence (docs/security.md).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.events import RecvRequest, SendRequest, listen
from grpclib.exceptions import GRPCError
from grpclib.server import Server
from multidict import MultiDict

log = logging.getLogger(__name__)

KEY_FILE = "provider-key.pem"
"""The provider's private key, in its data dir (mode 0600)."""
ID_FILE = "provider-id"
"""The id derived from that key, written next to it for operators; the key alone decides the id."""
ID_HEX_CHARS = 32
"""A provider id: the first 128 bits of sha256(raw public key), in hex."""

SIGNED_SERVICE = "/taskapi.node.Requestor/"
KEY_HEADER = "taskapi-key-bin"
TIME_HEADER = "taskapi-time-ms"
NONCE_HEADER = "taskapi-nonce-bin"
SIGNATURE_HEADER = "taskapi-signature-bin"
NONCE_BYTES = 16
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64

WINDOW_MS = 60_000
"""A signed call is accepted when its time is within this much of the requestor's clock (either way)."""
MAX_REMEMBERED = 200_000
"""Nonces remembered at most; past this, calls are refused RESOURCE_EXHAUSTED until old ones age out."""

_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("taskapi_provider_caller", default=None)


def provider_id_of(public_key: bytes) -> str:
    """The provider id of a raw 32-byte Ed25519 public key."""
    return hashlib.sha256(public_key).hexdigest()[:ID_HEX_CHARS]


class ProviderKey:
    """A provider's Ed25519 key pair and the id derived from it."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_bytes = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.provider_id = provider_id_of(self.public_bytes)

    @classmethod
    def load_or_create(cls, data_dir: Path) -> ProviderKey:
        """The key in `data_dir/provider-key.pem`, made there (mode 0600) on first use.

        Creation is atomic (written aside, then hard-linked into place), so two processes starting on one
        data dir end up with the same key. A key file others may read is refused: it is the identity.
        """
        path = data_dir / KEY_FILE
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            aside = data_dir / f".{KEY_FILE}.{secrets.token_hex(8)}"
            descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(pem)
                    handle.flush()
                    os.fsync(handle.fileno())
                with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                    os.link(aside, path)
            finally:
                aside.unlink(missing_ok=True)
        key = cls(_read_private_key(path))
        (data_dir / ID_FILE).write_text(key.provider_id + "\n")
        return key

    def sign(self, payload: bytes) -> bytes:
        return self._private.sign(payload)


def _read_private_key(path: Path) -> Ed25519PrivateKey:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ValueError(f"provider key {path} may be read by others (mode {mode:o}): chmod 600 it")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise ValueError(f"provider key {path} is not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"provider key {path} is not an Ed25519 key")
    return key


def _signed_bytes(method: str, time_ms: str, nonce: bytes, authorization: str) -> bytes:
    """What a signature covers, each part length-prefixed so no two calls share the bytes."""
    parts = [
        b"taskapi provider call v1",
        method.encode(),
        time_ms.encode(),
        nonce,
        hashlib.sha256(authorization.encode()).digest(),
    ]
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def signed_metadata(
    key: ProviderKey, method: str, authorization: str, time_ms: int
) -> dict[str, str | bytes]:
    """The metadata entries that sign one call of `method` made at `time_ms` with this `authorization`."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return {
        KEY_HEADER: key.public_bytes,
        TIME_HEADER: str(time_ms),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: key.sign(_signed_bytes(method, str(time_ms), nonce, authorization)),
    }


def sign_calls(channel: Channel, key: ProviderKey, clock: Callable[[], float] = time.time) -> None:
    """Sign every node-protocol call made on `channel` with `key` (a grpclib SendRequest listener)."""

    async def add_signature(event: SendRequest) -> None:
        if event.method_name.startswith(SIGNED_SERVICE):
            authorization = str(event.metadata.get("authorization", ""))
            signed = signed_metadata(key, event.method_name, authorization, int(clock() * 1000))
            event.metadata.update(signed)

    listen(channel, SendRequest, add_signature)


def _unauthenticated(message: str) -> GRPCError:
    return GRPCError(Status.UNAUTHENTICATED, message)


def _one(metadata: MultiDict[str | bytes], name: str) -> str | bytes:
    """The single value of a signature header."""
    values = metadata.getall(name, [])
    if len(values) != 1:
        raise _unauthenticated(f"a signed call carries exactly one {name} (got {len(values)})")
    return values[0]


def _one_bytes(metadata: MultiDict[str | bytes], name: str, size: int) -> bytes:
    value = _one(metadata, name)
    if not isinstance(value, bytes) or len(value) != size:
        raise _unauthenticated(f"{name} must be {size} bytes")
    return value


class SignedCalls:
    """The requestor's check of signed calls: fresh, never seen before, signed by the key they carry."""

    def __init__(
        self,
        window_ms: int = WINDOW_MS,
        max_remembered: int = MAX_REMEMBERED,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_ms = window_ms
        self.max_remembered = max_remembered
        self._clock = clock
        # (public key, nonce) -> when it may be forgotten (epoch s); insertion order is expiry order.
        self._seen: OrderedDict[tuple[bytes, bytes], float] = OrderedDict()

    def verify(self, method: str, metadata: MultiDict[str | bytes]) -> str:
        """The provider id of a validly signed, fresh, first-seen call; else a GRPCError saying why."""
        public_key = _one_bytes(metadata, KEY_HEADER, PUBLIC_KEY_BYTES)
        nonce = _one_bytes(metadata, NONCE_HEADER, NONCE_BYTES)
        signature = _one_bytes(metadata, SIGNATURE_HEADER, SIGNATURE_BYTES)
        time_text = _one(metadata, TIME_HEADER)
        if not isinstance(time_text, str) or not time_text.isdigit() or len(time_text) > 16:
            raise _unauthenticated(f"{TIME_HEADER} must be unix epoch milliseconds")
        skew_ms = int(time_text) - self._clock() * 1000
        if abs(skew_ms) > self.window_ms:
            raise _unauthenticated(
                f"signed call is {abs(skew_ms) / 1000:.0f} s {'ahead of' if skew_ms > 0 else 'behind'}"
                f" the requestor's clock (at most {self.window_ms / 1000:.0f} s allowed):"
                " check this machine's clock"
            )
        authorization = str(metadata.get("authorization", ""))
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(
                signature, _signed_bytes(method, time_text, nonce, authorization)
            )
        except (InvalidSignature, ValueError) as exc:
            raise _unauthenticated("the call's signature does not verify with the key it carries") from exc
        self._remember(public_key, nonce)
        return provider_id_of(public_key)

    def _remember(self, public_key: bytes, nonce: bytes) -> None:
        """Refuse a (key, nonce) seen before; remember it for as long as its time could still be fresh."""
        now = self._clock()
        while self._seen and next(iter(self._seen.values())) < now:
            self._seen.popitem(last=False)
        if (public_key, nonce) in self._seen:
            raise _unauthenticated("replayed call: this signature's nonce was already used")
        if len(self._seen) >= self.max_remembered:
            raise GRPCError(Status.RESOURCE_EXHAUSTED, "too many signed calls in the freshness window; retry")
        # Its time is at most `window` ahead of now, and stays acceptable `window` past that.
        self._seen[(public_key, nonce)] = now + 2 * self.window_ms / 1000

    @property
    def remembered(self) -> int:
        """How many (key, nonce) pairs are held now."""
        return len(self._seen)


def require_signed_calls(server: Server, calls: SignedCalls | None = None) -> SignedCalls:
    """Authenticate every node-protocol call on `server` (a RecvRequest listener; register it after the
    token check); the handler then reads the caller with `authenticated_provider`."""
    checker = calls or SignedCalls()

    async def check(event: RecvRequest) -> None:
        if not event.method_name.startswith(SIGNED_SERVICE):
            return
        try:
            _caller.set(checker.verify(event.method_name, event.metadata))
        except GRPCError as exc:
            log.warning("refused %s from %s: %s", event.method_name, event.peer.addr(), exc.message)
            raise

    listen(server, RecvRequest, check)
    return checker


def authenticated_provider(claimed: str = "") -> str:
    """The id of the provider whose key signed the current call.

    `claimed` is the provider_id a message names: empty means the caller itself; any other id than the
    caller's is PERMISSION_DENIED (the impostor case). Outside a signed call: UNAUTHENTICATED.
    """
    caller = _caller.get()
    if caller is None:
        raise _unauthenticated("this call is not signed by a provider key")
    if claimed and claimed != caller:
        raise GRPCError(
            Status.PERMISSION_DENIED,
            f"provider_id in the request is not the id of the key that signed the call ({caller});"
            " a provider may act only as itself",
        )
    return caller
