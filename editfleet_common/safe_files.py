"""Files read, written and deleted only where they belong.

Every function here takes a `root` (a folder the caller chose: a benchmark's, an export's, an
imported one; the root itself may be reached through links, as the user named it) and a path
relative to it, and walks that path one component at a time from an open descriptor of the root with
O_NOFOLLOW: a symbolic link anywhere below the root (a folder or the file itself) is refused
(OutsideRoot) instead of followed, so nothing outside the root is read, written or deleted, even if
a link is swapped in while the work goes on. Reads take regular files only (no FIFO, device or
folder), refused from their size before a byte is read (TooLarge).

`real_inside(root, path)` is for readers that accept links which stay inside the root (import): the
path with every link resolved, as a path relative to the resolved root, or OutsideRoot.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path, PurePosixPath

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO does not hang the open


class UnsafePath(OSError):
    """A path this module will not read, write or delete (the message names it and why)."""


class OutsideRoot(UnsafePath):
    """The path leaves its root: a symbolic link on the way, `..`, or an absolute path."""


class TooLarge(UnsafePath):
    """A file larger than the limit, refused before it is read."""


class NotRegular(UnsafePath):
    """Not a regular file (a folder, FIFO, device, socket)."""


def _parts(relpath: str | os.PathLike) -> list[str]:
    parts = PurePosixPath(os.fspath(relpath)).parts
    if not parts or PurePosixPath(os.fspath(relpath)).is_absolute() or any(p in ("..", ".", "") for p in parts):
        raise OutsideRoot(f"{os.fspath(relpath)!r}: not a plain path inside its folder")
    return list(parts)


def _open_dirs(root: Path, parts: list[str], *, create: bool) -> int:
    """A descriptor of root/parts[0]/.../parts[-1] (folders), links refused; created where asked."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, name in enumerate(parts):
            try:
                nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(name, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
                nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(fd, name):
                    raise OutsideRoot(f"{root / Path(*parts[:i + 1])} is a symbolic link "
                                      f"(to {_target(fd, name)}): not followed") from None
                raise
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _target(dir_fd: int, name: str) -> str:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return "?"


def first_link(root: str | os.PathLike, relpath: str | os.PathLike) -> Path | None:
    """The first component of root/relpath (below root) that is a symbolic link; None where there is
    none (components that do not exist yet end the walk)."""
    root = Path(root)
    current = root
    for name in _parts(relpath):
        current = current / name
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(mode):
            return current
        if not stat.S_ISDIR(mode):
            return None
    return None


def read_beneath(root: str | os.PathLike, relpath: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of the regular file root/relpath, no link followed below root, at most max_bytes
    (TooLarge from its size, before reading)."""
    root, parts = Path(root), _parts(relpath)
    fd = _open_dirs(root, parts[:-1], create=False)
    try:
        try:
            file_fd = os.open(parts[-1], _READ_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP and _is_link(fd, parts[-1]):
                raise OutsideRoot(f"{root / relpath} is a symbolic link (to {_target(fd, parts[-1])}): "
                                  "not followed") from None
            raise
    finally:
        os.close(fd)
    return _read_fd(file_fd, root / relpath, max_bytes)


def read_regular(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of the regular file at `path` (links followed: for paths already checked), at most
    max_bytes (TooLarge from its size, before reading); NotRegular for anything else."""
    return _read_fd(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), Path(path), max_bytes)


def _read_fd(fd: int, shown: Path, max_bytes: int) -> bytes:
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegular(f"{shown} is not a regular file")
        if info.st_size > max_bytes:
            raise TooLarge(f"{shown} is {info.st_size} bytes, over the limit of {max_bytes} bytes: not read")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise TooLarge(f"{shown} grew past the limit of {max_bytes} bytes while read: not read")
        return data
    finally:
        os.close(fd)


def write_beneath(root: str | os.PathLike, relpath: str | os.PathLike, data: bytes) -> None:
    """root/relpath written atomically (a temporary file beside it, fsync, rename), its folders made
    where missing; no link followed below root, and a link in the file's place is refused."""
    root, parts = Path(root), _parts(relpath)
    fd = _open_dirs(root, parts[:-1], create=True)
    try:
        name = parts[-1]
        if _is_link(fd, name):
            raise OutsideRoot(f"{root / relpath} is a symbolic link (to {_target(fd, name)}): not replaced")
        tmp = f".{name}.tmp-{os.getpid()}-{threading.get_ident()}"
        file_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=fd)
        try:
            with os.fdopen(file_fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=fd)
            except OSError:
                pass
            raise
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_beneath(root: str | os.PathLike, relpath: str | os.PathLike) -> bool:
    """Delete the file root/relpath (True), or nothing where it is not there (False); no link followed
    below root, and a link in the file's place is refused (OutsideRoot), not deleted."""
    root, parts = Path(root), _parts(relpath)
    try:
        fd = _open_dirs(root, parts[:-1], create=False)
    except FileNotFoundError:
        return False
    try:
        if _is_link(fd, parts[-1]):
            raise OutsideRoot(f"{root / relpath} is a symbolic link (to {_target(fd, parts[-1])}): not deleted")
        try:
            os.unlink(parts[-1], dir_fd=fd)
        except FileNotFoundError:
            return False
        return True
    finally:
        os.close(fd)


def real_inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """`path` (under root, as named) with every link resolved, relative to the resolved root;
    OutsideRoot where it resolves outside it (a link out, `..`)."""
    real_root = Path(root).resolve()
    try:
        real = Path(path).resolve()
    except (OSError, RuntimeError) as exc:  # a link loop
        raise OutsideRoot(f"{path}: cannot be resolved ({exc})") from None
    try:
        return real.relative_to(real_root)
    except ValueError:
        raise OutsideRoot(f"{path} leads out of {root} (to {real}): not followed") from None


__all__ = ["UnsafePath", "OutsideRoot", "TooLarge", "NotRegular", "first_link", "read_beneath", "read_regular",
           "write_beneath", "unlink_beneath", "real_inside"]
