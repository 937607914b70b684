"""The compile cache: modules compiled by this node, in memory and on disk, keyed by code and engine.

Key: sha256(module bytes) + the engine fingerprint (wasmtime version, settings, CPU architecture).
Artifacts live in a private directory (mode 0700, owned by this user). Next to each artifact
`<key>.cwasm` is its seal `<key>.seal`: the HMAC of the key and the artifact's bytes, made with a secret
that never leaves that directory. Every load from disk reads the artifact, checks its bytes against the
seal and deserializes exactly those bytes; a file this node did not compile (copied in, planted, edited
in place whatever its mtime) has no valid seal: it is recompiled, never loaded. A worker keeps the modules
it loaded in memory, so each is checked once per worker.

The directory holds at most `CompileLimits.cache_bytes` of artifacts: storing one evicts the least
recently used others (an artifact's mtime is its last use). Compiling happens in a process of its own
(`compiler.compile_artifact`).
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import stat
import time
from collections import OrderedDict
from pathlib import Path
from typing import Generic, TypeVar

import wasmtime
from wasmtime.component import Component

from environments.wasm.compiler import check_wasi_command, compile_artifact
from environments.wasm.engine import EngineProfile
from environments.wasm.errors import CacheDirUnsafe, DigestMismatch, ModuleRejected
from environments.wasm.runs import CompileLimits

log = logging.getLogger(__name__)

MAX_MODULE_BYTES = CompileLimits().module_bytes
Compiled = TypeVar("Compiled", wasmtime.Module, Component)
SECRET_NAME = "secret.key"
TOUCH_EVERY_S = 60.0
"""How often a module used from memory has its artifact's mtime (its last use) brought up to date."""


def ensure_private_dir(directory: Path) -> Path:
    """Create `directory` (mode 0700) or check an existing one is owned by us and closed to others."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise CacheDirUnsafe(
            f"compile cache {directory} must be owned by uid {os.getuid()} with mode 0700 "
            f"(it is uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):o}); refusing to use it"
        )
    return directory


def _load_secret(directory: Path) -> bytes:
    path = directory / SECRET_NAME
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes()
    staging = directory / f".{SECRET_NAME}.{os.getpid()}"
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    try:
        os.link(staging, path)  # atomic: the first worker to get here decides the secret
    except FileExistsError:
        pass
    finally:
        staging.unlink()
    return path.read_bytes()


def read_wasm(path: Path, sha256: str, max_bytes: int = MAX_MODULE_BYTES) -> bytes:
    """The bytes of a wasm binary (core module or component), after checking size, digest and magic."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ModuleRejected(
                f"module {path} is {size} bytes, over the module size limit of {max_bytes} bytes"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise ModuleRejected(f"cannot read module {path}: {exc.strerror or exc}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256.lower():
        raise DigestMismatch(f"module {path} has sha256 {actual}, but {sha256} was expected; refusing it")
    if data[:4] != b"\0asm":
        raise ModuleRejected(f"module {path} is not a WebAssembly binary (it starts with {data[:8]!r})")
    return data


def read_module(path: Path, sha256: str, max_bytes: int = MAX_MODULE_BYTES) -> bytes:
    """The module's bytes, after `read_wasm`'s checks and that it is a core wasm binary."""
    data = read_wasm(path, sha256, max_bytes)
    if data[4:8] != b"\x01\0\0\0":
        raise ModuleRejected(
            f"module {path} is a WebAssembly component or an unknown binary version; "
            "only core modules (WASI preview 1 commands) run here"
        )
    return data


class ArtifactCache(abc.ABC, Generic[Compiled]):
    """Compiled code by sha256 and engine profile: an in-memory LRU over HMAC-checked artifacts.

    Subclasses say how their kind of code (core modules, components) is read, compiled and loaded.
    """

    def __init__(
        self, directory: Path, limits: CompileLimits | None = None, memory_entries: int = 32
    ) -> None:
        self.directory = ensure_private_dir(directory)
        self.limits = limits or CompileLimits()
        self._secret = _load_secret(self.directory)
        self._memory: OrderedDict[str, Compiled] = OrderedDict()
        self._memory_entries = memory_entries
        self._touched: dict[str, float] = {}
        self._fingerprints: dict[EngineProfile, str] = {}

    @abc.abstractmethod
    def read(self, path: Path, sha256: str) -> bytes:
        """The code's bytes, checked (size, digest, kind); `ModuleRejected` naming what is wrong."""

    @abc.abstractmethod
    def compile(self, profile: EngineProfile, data: bytes, name: str) -> bytes:
        """The serialized artifact of `data` compiled for `profile` within `self.limits`."""

    @abc.abstractmethod
    def deserialize(self, engine: wasmtime.Engine, artifact: bytes) -> Compiled:
        """Load an artifact this node compiled."""

    def check(self, compiled: Compiled, name: str) -> None:
        """Refuse (`ModuleRejected`) freshly compiled code this host cannot run; before it is cached."""

    def load(
        self, engine: wasmtime.Engine, profile: EngineProfile, path: Path, sha256: str
    ) -> tuple[Compiled, bool]:
        """The compiled module and whether it came from the cache (else it was compiled now)."""
        if profile not in self._fingerprints:
            self._fingerprints[profile] = profile.fingerprint()
        fingerprint = self._fingerprints[profile]
        key = f"{sha256.lower()}-{fingerprint}"
        module = self._memory.get(key)
        if module is not None:
            self._memory.move_to_end(key)
            self._touch(key)
            return module, True
        module = self._load_artifact(engine, key)
        cached = module is not None
        if module is None:
            artifact = self.compile(profile, self.read(path, sha256), path.name)
            module = self.deserialize(engine, artifact)
            self.check(module, path.name)
            self._store_artifact(key, artifact)
            self._evict(keep=key)
        self._memory[key] = module
        if len(self._memory) > self._memory_entries:
            self._memory.popitem(last=False)
        return module, cached

    def artifact_path(self, key: str) -> Path:
        return self.directory / f"{key}.cwasm"

    def _seal_path(self, key: str) -> Path:
        return self.directory / f"{key}.seal"

    def _seal(self, key: str, artifact: bytes) -> bytes:
        return hmac.new(self._secret, key.encode() + b"\0" + artifact, "sha256").hexdigest().encode()

    def _load_artifact(self, engine: wasmtime.Engine, key: str) -> Compiled | None:
        path = self.artifact_path(key)
        try:
            artifact, seal = path.read_bytes(), self._seal_path(key).read_bytes()
        except FileNotFoundError:
            return None  # never compiled here, or evicted (perhaps by another worker just now)
        if not hmac.compare_digest(seal, self._seal(key, artifact)):
            log.warning("ignoring %s: its bytes are not those this node compiled", path)
            return None
        self._touch(key, now=True)
        return self.deserialize(engine, artifact)

    def _store_artifact(self, key: str, artifact: bytes) -> None:
        _write_private(self.artifact_path(key), artifact)
        _write_private(self._seal_path(key), self._seal(key, artifact))
        self._touched[key] = time.monotonic()

    def _touch(self, key: str, now: bool = False) -> None:
        """Record a use of `key`'s artifact in its mtime (at most every `TOUCH_EVERY_S` from memory)."""
        if not now and time.monotonic() - self._touched.get(key, 0.0) < TOUCH_EVERY_S:
            return
        self._touched[key] = time.monotonic()
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.artifact_path(key))

    def _evict(self, keep: str) -> None:
        """Delete the least recently used artifacts (never `keep`) until the rest fit in `cache_bytes`."""
        artifacts = []
        for path in self.directory.glob("*.cwasm"):
            with contextlib.suppress(FileNotFoundError):
                info = path.stat()
                artifacts.append((info.st_mtime_ns, info.st_size, path))
        total = sum(size for _, size, _ in artifacts)
        for _, size, path in sorted(artifacts):
            if total <= self.limits.cache_bytes:
                break
            if path.stem == keep:
                continue
            path.unlink(missing_ok=True)
            path.with_suffix(".seal").unlink(missing_ok=True)
            total -= size
            log.info("evicted %s from the compile cache (least recently used)", path.name)


class ModuleCache(ArtifactCache[wasmtime.Module]):
    """The compile cache of WASI command modules."""

    def read(self, path: Path, sha256: str) -> bytes:
        return read_module(path, sha256, self.limits.module_bytes)

    def compile(self, profile: EngineProfile, data: bytes, name: str) -> bytes:
        return compile_artifact(profile, data, name, self.limits)

    def deserialize(self, engine: wasmtime.Engine, artifact: bytes) -> wasmtime.Module:
        return wasmtime.Module.deserialize(engine, artifact)

    def check(self, compiled: wasmtime.Module, name: str) -> None:
        check_wasi_command(compiled, name)


def _write_private(target: Path, data: bytes) -> None:
    """Write `data` to `target` atomically (a private staging file, then rename)."""
    staging = target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(staging, target)
