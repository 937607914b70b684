"""The compile cache: modules compiled by this node, in memory and on disk, keyed by code and engine.

Key: sha256(module bytes) + the engine fingerprint (wasmtime version, settings, CPU architecture).
Artifacts live in a private directory (mode 0700, owned by this user). Next to each artifact
`<key>.cwasm` is its seal `<key>.seal`: the HMAC of the artifact's bytes and of the file's identity
(device, inode, size, mtime), made with a secret that never leaves that directory. A sealed file whose
identity is unchanged is mapped straight in (`Module.deserialize_file`, no hashing: warm loads stay
~0.1 ms however big the module); any other file is hashed and must match its sealed HMAC. A file this
node did not compile (copied in, planted, corrupted) has no valid seal: it is recompiled, never loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import time
from collections import OrderedDict
from pathlib import Path

import wasmtime

from environments.wasm.errors import CacheDirUnsafe, DigestMismatch, ModuleRejected

log = logging.getLogger(__name__)

WASI_MODULE = "wasi_snapshot_preview1"
MAX_MODULE_BYTES = 256 << 20
SECRET_NAME = "secret.key"


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


def read_module(path: Path, sha256: str) -> bytes:
    """The module's bytes, after checking size, digest and that it is a core wasm binary."""
    try:
        size = path.stat().st_size
        if size > MAX_MODULE_BYTES:
            raise ModuleRejected(f"module {path} is {size} bytes; the limit is {MAX_MODULE_BYTES}")
        data = path.read_bytes()
    except OSError as exc:
        raise ModuleRejected(f"cannot read module {path}: {exc.strerror or exc}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256.lower():
        raise DigestMismatch(f"module {path} has sha256 {actual}, but {sha256} was expected; refusing it")
    if data[:4] != b"\0asm":
        raise ModuleRejected(f"module {path} is not a WebAssembly binary (it starts with {data[:8]!r})")
    if data[4:8] != b"\x01\0\0\0":
        raise ModuleRejected(
            f"module {path} is a WebAssembly component or an unknown binary version; "
            "only core modules (WASI preview 1 commands) run here"
        )
    return data


def check_wasi_command(module: wasmtime.Module, name: str) -> None:
    """Reject a module that imports what the host lacks or is not a WASI command (no `_start`)."""
    foreign = [f"{item.module}::{item.name}" for item in module.imports if item.module != WASI_MODULE]
    if foreign:
        raise ModuleRejected(
            f"module {name} imports {', '.join(foreign)}, which the host does not provide "
            f"(only {WASI_MODULE} is available)"
        )
    exports = {item.name: item.type for item in module.exports}
    if not isinstance(exports.get("_start"), wasmtime.FuncType):
        raise ModuleRejected(f"module {name} exports no `_start` function: it must be a WASI command module")


def compile_module(engine: wasmtime.Engine, data: bytes, name: str) -> wasmtime.Module:
    """Compile and check one module (`data` already passed `read_module`)."""
    try:
        module = wasmtime.Module(engine, data)
    except wasmtime.WasmtimeError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ModuleRejected(f"module {name} is not a valid WebAssembly module: {reason}") from exc
    check_wasi_command(module, name)
    return module


class ModuleCache:
    """Compiled modules by sha256 and engine fingerprint: an in-memory LRU over HMAC-checked artifacts."""

    def __init__(self, directory: Path, memory_entries: int = 32) -> None:
        self.directory = ensure_private_dir(directory)
        self._secret = _load_secret(self.directory)
        self._memory: OrderedDict[str, wasmtime.Module] = OrderedDict()
        self._memory_entries = memory_entries

    def load(
        self, engine: wasmtime.Engine, fingerprint: str, path: Path, sha256: str
    ) -> tuple[wasmtime.Module, bool]:
        """The compiled module and whether it came from the cache (else it was compiled now)."""
        key = f"{sha256.lower()}-{fingerprint}"
        module = self._memory.get(key)
        if module is not None:
            self._memory.move_to_end(key)
            return module, True
        module = self._load_artifact(engine, key)
        cached = module is not None
        if module is None:
            module = compile_module(engine, read_module(path, sha256), path.name)
            self._store_artifact(key, bytes(module.serialize()))
        self._memory[key] = module
        if len(self._memory) > self._memory_entries:
            self._memory.popitem(last=False)
        return module, cached

    def artifact_path(self, key: str) -> Path:
        return self.directory / f"{key}.cwasm"

    def _seal_path(self, key: str) -> Path:
        return self.directory / f"{key}.seal"

    def _mac(self, *parts: bytes) -> str:
        return hmac.new(self._secret, b"\0".join(parts), "sha256").hexdigest()

    def _seal_mac(self, key: str, identity: list[int], content: str) -> str:
        return self._mac(json.dumps([key, identity, content]).encode())

    def _read_seal(self, key: str) -> tuple[list[int], str] | None:
        """The sealed (identity, content HMAC), or None if the seal is missing or not ours."""
        try:
            seal = json.loads(self._seal_path(key).read_bytes())
            identity, content, mac = list(seal["identity"]), str(seal["content"]), str(seal["mac"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not hmac.compare_digest(mac, self._seal_mac(key, identity, content)):
            return None
        return identity, content

    def _write_seal(self, key: str, content: str) -> None:
        identity = _identity(self.artifact_path(key))
        seal = {"identity": identity, "content": content, "mac": self._seal_mac(key, identity, content)}
        _write_private(self._seal_path(key), json.dumps(seal).encode())

    def _load_artifact(self, engine: wasmtime.Engine, key: str) -> wasmtime.Module | None:
        path = self.artifact_path(key)
        if not path.is_file():
            return None
        seal = self._read_seal(key)
        if seal is None:
            log.warning("ignoring %s: not an artifact this node compiled", path)
            return None
        identity, content = seal
        if identity == _identity(path):
            return wasmtime.Module.deserialize_file(engine, str(path))
        artifact = path.read_bytes()  # moved, copied or touched since sealed: check the bytes themselves
        if not hmac.compare_digest(content, self._mac(key.encode(), artifact)):
            log.warning("ignoring %s: its bytes are not those this node compiled", path)
            return None
        self._write_seal(key, content)
        return wasmtime.Module.deserialize(engine, artifact)

    def _store_artifact(self, key: str, artifact: bytes) -> None:
        _write_private(self.artifact_path(key), artifact)
        self._write_seal(key, self._mac(key.encode(), artifact))


def _identity(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns]


def _write_private(target: Path, data: bytes) -> None:
    """Write `data` to `target` atomically (a private staging file, then rename)."""
    staging = target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(staging, target)
