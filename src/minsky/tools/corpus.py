"""The files of a Search collection: listed without leaving its folder, kept up to date
cheaply.

Safe under races: every directory is opened from its parent's descriptor with
`O_NOFOLLOW`, and every file likewise, so a file or folder swapped for a symbolic link
between listing and reading is skipped, not followed. What was opened is then checked,
not the name it was opened by: a regular file, on the collection's device, whose path
(`/proc/self/fd`, where there is one) is inside the collection. Symbolic links are never
followed, not even to a file of the collection.

Cheap when nothing changed: a `Corpus` remembers each folder's listing with the folder's
inode and modification time, and lists a folder again only when those changed (a file
was added, removed or renamed there). A file edited in place changes no folder, so a
refresh also re-checks up to `RECHECK` files, in turn: a small collection is checked
whole at every call, a large one over a few calls. It holds names and sizes, not text.

What it leaves out: hidden files and folders (a name starting with "."), files of other
suffixes than the caller's, and anything not on the collection's device.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

RECHECK = 256  # files re-checked (one stat each) per refresh of an unchanged folder tree
_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FILE = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class Seen:
    """A file as last checked: what identifies its content without reading it."""

    ino: int
    mtime_ns: int
    size: int


@dataclass
class _Folder:
    ino: int
    mtime_ns: int
    folders: list[str]
    files: list[str]


@contextmanager
def _opened(path: str | Path, flags: int, dir_fd: int | None = None) -> Iterator[int]:
    fd = os.open(path, flags, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def _inside(fd: int, root: Path) -> bool:
    """Whether what `fd` is open on lies inside `root`, by the kernel's own account."""
    try:
        where = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return True  # no /proc: the O_NOFOLLOW walk from the root is the guard
    return Path(where).is_relative_to(root)


def read_inside(root: Path, rel: Path, limit: int) -> bytes | None:
    """At most `limit` bytes of the file `rel` of folder `root` (or of the file `root`
    itself, for an empty `rel`), or None where it is not a regular file inside the root:
    a link (anywhere on the way), another device, gone."""
    try:
        if not rel.parts:
            with _opened(root, _FILE | _NOFOLLOW) as fd:
                return _checked_read(fd, root, os.fstat(fd).st_dev, limit)
        with _opened(root, _DIR) as top:
            device = os.fstat(top).st_dev
            fds = [top]
            try:
                for part in rel.parts[:-1]:
                    fds.append(os.open(part, _DIR | _NOFOLLOW, dir_fd=fds[-1]))
                with _opened(rel.parts[-1], _FILE | _NOFOLLOW, dir_fd=fds[-1]) as fd:
                    return _checked_read(fd, root, device, limit)
            finally:
                for fd in fds[1:]:
                    os.close(fd)
    except OSError:
        return None


def _checked_read(fd: int, root: Path, device: int, limit: int) -> bytes | None:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_dev != device or not _inside(fd, root):
        return None
    chunks, left = [], limit
    while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


@dataclass
class Corpus:
    """The files of the folder `root` with one of `suffixes`, kept up to date."""

    root: Path
    suffixes: tuple[str, ...]
    files: dict[str, Seen] = field(default_factory=dict)  # relative path -> as last seen
    _folders: dict[str, _Folder] = field(default_factory=dict)
    _turn: int = 0  # where the next in-place re-check starts

    def refresh(self) -> set[str]:
        """Bring `files` up to date; the paths added, changed or removed since."""
        before = self.files
        self.files = {}
        seen_folders: set[str] = set()
        order: list[tuple[int, str, str]] = []  # (folder fd, name, path); path "": close it
        with _opened(self.root, _DIR) as top:
            try:
                self._walk(top, "", os.fstat(top).st_dev, before, seen_folders, order)
                self._recheck([entry for entry in order if entry[2]])
            finally:
                for fd, _, path in order:
                    if not path:
                        os.close(fd)
        for gone in set(self._folders) - seen_folders:
            del self._folders[gone]
        return {p for p in before.keys() | self.files.keys()
                if before.get(p) != self.files.get(p)}

    def _walk(self, fd: int, rel: str, device: int, before: dict[str, Seen],
              seen_folders: set[str], order: list[tuple[int, str, str]]) -> None:
        st = os.fstat(fd)
        if st.st_dev != device:
            return
        seen_folders.add(rel)
        known = self._folders.get(rel)
        if known is None or (known.ino, known.mtime_ns) != (st.st_ino, st.st_mtime_ns):
            known = self._folders[rel] = self._list(fd, st)
            for name in known.files:  # a changed folder: each of its files again
                self._check(fd, name, f"{rel}{name}", device)
        else:
            for name in known.files:
                path = f"{rel}{name}"
                if path in before:
                    self.files[path] = before[path]
                    order.append((fd, name, path))
        for name in known.folders:
            try:
                sub = os.open(name, _DIR | _NOFOLLOW, dir_fd=fd)
            except OSError:
                continue  # gone, or swapped for a link since it was listed
            # the re-checks after the walk use this descriptor: it is closed after them
            order.append((sub, "", ""))
            self._walk(sub, f"{rel}{name}/", device, before, seen_folders, order)

    def _recheck(self, files: list[tuple[int, str, str]]) -> None:
        """Re-check up to RECHECK of the files whose folders did not change, in turn."""
        if not files:
            return
        start = self._turn % len(files)
        for fd, name, path in (files[start:] + files[:start])[:RECHECK]:
            self._check(fd, name, path, None)
        self._turn = start + RECHECK

    def _check(self, fd: int, name: str, path: str, device: int | None) -> None:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            self.files.pop(path, None)
            return
        if not stat.S_ISREG(st.st_mode) or (device is not None and st.st_dev != device):
            self.files.pop(path, None)
            return
        self.files[path] = Seen(st.st_ino, st.st_mtime_ns, st.st_size)

    def _list(self, fd: int, st: os.stat_result) -> _Folder:
        folders: list[str] = []
        files: list[str] = []
        try:
            entries = list(os.scandir(fd))
        except OSError:
            entries = []  # unreadable: nothing of it is in the collection
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden folders (.git, .venv) hold tooling, not the collection
            with suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                elif (entry.is_file(follow_symlinks=False)
                      and Path(entry.name).suffix.lower() in self.suffixes):
                    files.append(entry.name)
        return _Folder(st.st_ino, st.st_mtime_ns, sorted(folders), sorted(files))


__all__ = ["RECHECK", "Corpus", "Seen", "read_inside"]
