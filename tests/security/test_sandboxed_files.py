"""The helper every host read of a sandboxed folder goes through (`apps/sdk/sandboxed_files.py`).

Each hostile layout is made on the real file system; each case asserts the named refusal (`UnsafePath`
naming the path), and that no byte of the host file behind the link was read or copied.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from apps.sdk.sandboxed_files import (
    UnsafePath,
    check_file,
    copy_file,
    copy_tree,
    file_digest,
    open_file,
    read_bytes,
)

SECRET = b"host secret: never in a result\n"


@pytest.fixture
def host_secret(tmp_path: Path) -> Path:
    """A host file and folder outside the sandboxed folder, which links below try to reach."""
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "passwd").write_bytes(SECRET)
    return outside


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "sandbox"
    (folder / "sub").mkdir(parents=True)
    return folder


Layout = Callable[[Path, Path], None]


def _fifo(root: Path, host: Path) -> None:
    os.mkfifo(root / "result.txt")


def _socket(root: Path, host: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "result.txt"))
    server.close()


def _zero_device(root: Path, host: Path) -> None:
    """A character device like /dev/zero: read, it never ends (a host hashing it would hang)."""
    try:
        os.mknod(root / "result.txt", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("making a device node needs CAP_MKNOD")


def _chain(root: Path, host: Path) -> None:
    (root / "hop").symlink_to(host / "passwd")
    (root / "result.txt").symlink_to("hop")


def _link_inside(root: Path, host: Path) -> None:
    (root / "real.txt").write_bytes(b"inside")
    (root / "result.txt").symlink_to("real.txt")


# Each makes root/result.txt (or a path on the way to it) something host code must not follow or read.
HOSTILE: dict[str, tuple[Layout, str]] = {
    "relative link to a host file": (
        lambda root, host: (root / "result.txt").symlink_to(Path("..") / "host" / "passwd"),
        "symbolic link",
    ),
    "deep relative link (as WASI makes)": (
        lambda root, host: (root / "result.txt").symlink_to("../" * 20 + str(host / "passwd").lstrip("/")),
        "symbolic link",
    ),
    "absolute link to a host file": (
        lambda root, host: (root / "result.txt").symlink_to(host / "passwd"),
        "symbolic link",
    ),
    "link to a host folder": (
        lambda root, host: (root / "result.txt").symlink_to(host),
        "symbolic link",
    ),
    "link chain": (_chain, "symbolic link"),
    "dangling link": (
        lambda root, host: (root / "result.txt").symlink_to("../nowhere/at/all"),
        "symbolic link",
    ),
    "link to a file inside the folder": (_link_inside, "symbolic link"),
    "fifo": (_fifo, "a FIFO"),
    "unix socket": (_socket, "a socket"),
    "character device": (_zero_device, "a character device"),
    "folder": (lambda root, host: (root / "result.txt").mkdir(), "a folder"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_open_refuses(case: str, root: Path, host_secret: Path) -> None:
    make, problem = HOSTILE[case]
    make(root, host_secret)
    for read in (open_file, check_file, read_bytes, file_digest):
        with pytest.raises(UnsafePath, match=problem) as refused:
            read(root, "result.txt")
        assert refused.value.path == "result.txt"
    with pytest.raises(UnsafePath, match=problem):
        copy_file(root, "result.txt", root.parent / "copy")
    assert not (root.parent / "copy").exists()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_open_refuses_in_a_subfolder(case: str, root: Path, host_secret: Path) -> None:
    make, problem = HOSTILE[case]
    make(root / "sub", host_secret)
    with pytest.raises(UnsafePath, match=problem) as refused:
        read_bytes(root, "sub/result.txt")
    assert refused.value.path == "sub/result.txt"


@pytest.mark.parametrize(
    "make",
    [
        lambda root, host: (root / "linked").symlink_to(host),
        lambda root, host: (root / "linked").symlink_to("sub"),
    ],
    ids=["folder link to a host folder", "folder link inside the folder"],
)
def test_a_link_on_the_way_is_refused(make: Layout, root: Path, host_secret: Path) -> None:
    make(root, host_secret)
    (root / "sub" / "passwd").write_bytes(b"inside")
    with pytest.raises(UnsafePath, match="symbolic link") as refused:
        read_bytes(root, "linked/passwd")
    assert refused.value.path == "linked"


@pytest.mark.parametrize("path", ["../host/passwd", "/etc/passwd", "sub/../../host/passwd", "", "."])
def test_paths_leaving_the_folder_are_refused(path: str, root: Path, host_secret: Path) -> None:
    with pytest.raises(UnsafePath, match=r"leaves its folder|names the folder itself"):
        read_bytes(root, path)


def test_a_missing_file_is_not_found(root: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_bytes(root, "sub/absent.txt")


def test_regular_files_are_read_through_subfolders(root: Path) -> None:
    (root / "sub" / "deeper").mkdir()
    data = b"x" * 300_000
    (root / "sub" / "deeper" / "out.bin").write_bytes(data)
    assert read_bytes(root, "sub/deeper/out.bin") == data
    assert file_digest(root, "./sub/deeper/out.bin") == (hashlib.sha256(data).hexdigest(), len(data))
    assert check_file(root, "sub/deeper/out.bin") == root / "sub/deeper/out.bin"
    copy_file(root, "sub/deeper/out.bin", root.parent / "copy.bin")
    assert (root.parent / "copy.bin").read_bytes() == data


def test_the_folder_itself_may_be_reached_through_a_host_link(tmp_path: Path, root: Path) -> None:
    """The folder's own path is the host's choice: only what lies below it is the guest's."""
    (root / "out.txt").write_bytes(b"ok")
    (tmp_path / "alias").symlink_to(root)
    assert read_bytes(tmp_path / "alias", "out.txt") == b"ok"


def test_copy_tree_copies_files_and_folders(root: Path, tmp_path: Path) -> None:
    (root / "a.txt").write_bytes(b"a")
    (root / "sub" / "b.txt").write_bytes(b"b")
    (root / "sub" / "empty").mkdir()
    copy_tree(root, tmp_path / "copy")
    assert (tmp_path / "copy" / "a.txt").read_bytes() == b"a"
    assert (tmp_path / "copy" / "sub" / "b.txt").read_bytes() == b"b"
    assert (tmp_path / "copy" / "sub" / "empty").is_dir()


@pytest.mark.parametrize("case", sorted(set(HOSTILE) - {"folder"}))  # a folder is copied, not refused
@pytest.mark.parametrize("where", ["", "sub/"])
def test_copy_tree_refuses(case: str, where: str, root: Path, host_secret: Path, tmp_path: Path) -> None:
    make, _ = HOSTILE[case]
    make(root / where, host_secret)
    with pytest.raises(UnsafePath) as refused:
        copy_tree(root, tmp_path / "copy")
    assert refused.value.path.startswith(where)
    copied = [p.read_bytes() for p in (tmp_path / "copy").rglob("*") if p.is_file() and not p.is_symlink()]
    assert not any(SECRET in data for data in copied)
    assert not any(p.is_symlink() for p in (tmp_path / "copy").rglob("*"))


def test_copy_tree_does_not_copy_a_linked_host_folder(root: Path, host_secret: Path, tmp_path: Path) -> None:
    (root / "etc").symlink_to(host_secret)
    with pytest.raises(UnsafePath, match="symbolic link") as refused:
        copy_tree(root, tmp_path / "copy")
    assert refused.value.path == "etc"
    assert not (tmp_path / "copy" / "etc").exists()
