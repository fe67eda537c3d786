"""File trees read in place: a folder or a zip archive, listed and read the same way, never extracted.

A zip is untrusted: entries with absolute paths or `..` parts and entries that would expand far beyond an
image (declared size or compression ratio) are refused with a reason and never read.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ferlab.errors import DataError, ImageDecodeError
from ferlab.io import is_utf8_name, printable_name

__all__ = ["TreeEntry", "FileTree", "FolderTree", "ZipTree", "MAX_ENTRY_BYTES", "MAX_COMPRESSION_RATIO"]

#: A face image file is at most a few MB; anything declaring more than 64 MiB is refused.
MAX_ENTRY_BYTES = 64 * 1024 * 1024
#: Images barely compress inside a zip; a ratio above 100:1 on an entry over 1 MiB is a decompression bomb.
MAX_COMPRESSION_RATIO = 100
_RATIO_MIN_BYTES = 1024 * 1024


@dataclass(frozen=True)
class TreeEntry:
    """One file: its POSIX path relative to the tree root and its (uncompressed) size in bytes."""

    path: str
    size: int


class FileTree:
    """Interface: `entries()` lists files, `refused()` lists (path, reason), `read(entry)` returns bytes."""

    root: Path

    def entries(self) -> list[TreeEntry]:  # pragma: no cover - interface
        raise NotImplementedError

    def refused(self) -> list[tuple[str, str]]:
        return []

    def hidden_files(self) -> int:
        """Files left out as hidden (a name starting with ".", or `__MACOSX`), counted so none vanish unsaid."""
        return 0

    def read(self, entry: TreeEntry) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError

    def fingerprint(self) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release file handles (no-op for folders)."""

    def __enter__(self) -> FileTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


class FolderTree(FileTree):
    """A folder on disk, walked recursively (hidden files and folders skipped). Symbolic links are followed, as
    the reader follows them (a linked class folder was left out without a word, and a changed link target did not
    change the fingerprint); a folder reached twice through links is read once, and a broken link is refused."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._entries: list[TreeEntry] | None = None
        self._mtimes: list[int] = []
        self._refused: list[tuple[str, str]] = []
        self._hidden = 0  # hidden files seen while listing
        self._hidden_dirs: list[str] = []  # hidden folders, not walked unless hidden_files() is asked

    def entries(self) -> list[TreeEntry]:
        if self._entries is None:
            found: list[tuple[str, int, int]] = []
            seen_dirs: set[tuple[int, int]] = set()
            for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
                here = os.stat(dirpath)
                if (here.st_dev, here.st_ino) in seen_dirs:  # a link back up the tree, or a second way in
                    dirnames[:] = []
                    continue
                seen_dirs.add((here.st_dev, here.st_ino))
                self._hidden_dirs += [os.path.join(dirpath, d) for d in dirnames if _hidden((d,))]
                dirnames[:] = sorted(d for d in dirnames if not _hidden((d,)))
                rel_dir = Path(dirpath).relative_to(self.root).as_posix()
                for name in filenames:
                    if _hidden((name,)):
                        self._hidden += 1
                        continue
                    rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                    if not is_utf8_name(rel):  # ids, reports and JSON need text; such a name cannot be printed
                        self._refused.append((printable_name(rel), "file name is not valid UTF-8"))
                        continue
                    try:
                        st = os.stat(os.path.join(dirpath, name))  # a link's target: what read() will read
                    except OSError:
                        self._refused.append((rel, "broken symbolic link"))
                        continue
                    found.append((rel, st.st_size, st.st_mtime_ns))
            found.sort()
            self._entries = [TreeEntry(p, s) for p, s, _ in found]
            self._mtimes = [m for _, _, m in found]
        return self._entries

    def refused(self) -> list[tuple[str, str]]:
        self.entries()
        return list(self._refused)

    def hidden_files(self) -> int:
        self.entries()
        return self._hidden + sum(len(files) for d in self._hidden_dirs for _, _, files in os.walk(d))

    def read(self, entry: TreeEntry) -> bytes:
        try:
            return (self.root / entry.path).read_bytes()
        except OSError as err:
            raise ImageDecodeError(f"cannot read file: {err.strerror or err}") from err

    def fingerprint(self) -> dict:
        """The folder listing (paths, sizes, mtimes) hashed: any added, removed or touched file changes it."""
        digest = hashlib.sha256()
        for entry, mtime in zip(self.entries(), self._mtimes, strict=True):
            digest.update(f"{entry.path}\0{entry.size}\0{mtime}\n".encode())
        for name, _ in self._refused:  # a refused name still changes the listing
            digest.update(f"refused\0{name}\n".encode())
        return {"kind": "folder", "path": str(self.root), "files": len(self.entries()), "listing": digest.hexdigest()}


class ZipTree(FileTree):
    """A zip archive read in place; unsafe entries are refused, not read."""

    def __init__(self, path: Path) -> None:
        self.root = path
        try:
            self._zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile as err:
            raise DataError(f"{path} is not a valid zip archive ({err})") from err
        except OSError as err:
            raise DataError(f"cannot open {path}: {err.strerror or err}") from err
        self._entries: list[TreeEntry] = []
        self._infos: dict[str, zipfile.ZipInfo] = {}
        self._refused: list[tuple[str, str]] = []
        self._hidden = 0
        for info in self._zip.infolist():
            if info.is_dir():
                continue
            reason = self._unsafe_reason(info)
            if reason:
                self._refused.append((info.filename, reason))
                continue
            name = info.filename.replace("\\", "/")  # some Windows tools write backslash separators
            if _hidden(PurePosixPath(name).parts):
                self._hidden += 1
                continue
            if name in self._infos:
                self._refused.append((name, "a second zip entry with the same name (the first one is read)"))
                continue
            self._entries.append(TreeEntry(name, info.file_size))
            self._infos[name] = info

    @staticmethod
    def _unsafe_reason(info: zipfile.ZipInfo) -> str:
        name = info.filename.replace("\\", "/")
        if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in name.split("/"):
            return "unsafe path (absolute or '..')"
        if info.file_size > MAX_ENTRY_BYTES:
            return f"decompression bomb: declares {info.file_size:,} bytes (limit {MAX_ENTRY_BYTES:,})"
        if info.file_size > _RATIO_MIN_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            return f"decompression bomb: compression ratio {info.file_size / max(info.compress_size, 1):.0f}:1"
        return ""

    def entries(self) -> list[TreeEntry]:
        return self._entries

    def refused(self) -> list[tuple[str, str]]:
        return list(self._refused)

    def hidden_files(self) -> int:
        return self._hidden

    def read(self, entry: TreeEntry) -> bytes:
        info = self._infos[entry.path]
        try:
            with self._zip.open(info) as fh:
                data = fh.read(MAX_ENTRY_BYTES + 1)  # zipfile stops at the declared size and checks the CRC
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as err:
            raise ImageDecodeError(f"cannot read zip entry: {err}") from err
        if len(data) > MAX_ENTRY_BYTES:
            raise ImageDecodeError("entry expands beyond its declared size")
        return data

    def fingerprint(self) -> dict:
        st = self.root.stat()
        return {"kind": "zip", "path": str(self.root), "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def close(self) -> None:
        self._zip.close()
