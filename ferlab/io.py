"""Atomic file writes (a temporary file in the same folder, then `os.replace` it in place) and YAML reads whose
failures are one-line ConfigErrors."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "atomic_open", "atomic_write_text", "atomic_write_bytes", "atomic_write_json",
           "blocked_folder_message", "is_utf8_name", "printable_name", "read_yaml_file", "torch_load_error_text"]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    target = Path(path)
    if target.is_dir():  # checked first, so the error names the path asked for, not the temporary file
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix + ".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp makes 0600 files; give them normal permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a file for writing that appears at `path` only once fully written and closed."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any, default: Callable[[Any], Any] | None = None) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=default) + "\n")


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block ends, then raise it: files written together (a run's checkpoints,
    metrics and summary) stay consistent with each other. Outside the main thread signals cannot be handled: no-op."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield  # None: a handler installed outside Python, which could not be put back
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def absolute_if_exists(path: str | None) -> str | None:
    """`path` made absolute when it names an existing file or folder (a run's recorded data works from any
    directory); anything else (None, a name that is not a path) is returned as given."""
    if path and Path(path).expanduser().exists():
        return str(Path(path).expanduser().resolve())
    return path


def blocked_folder_message(path: str | os.PathLike) -> str | None:
    """Why no folder can be made at `path` when `path` or one of its parents is an existing file, else None."""
    blocking = next((p for p in (Path(path), *Path(path).parents) if p.is_file()), None)
    return None if blocking is None else f"{blocking} is a file, so no folder can be made there"


def read_yaml_file(path: str | os.PathLike, kind: str) -> Any:
    """The parsed YAML at `path`; a missing, unreadable or malformed file is a ConfigError naming `kind` ("config",
    "suite", ...) in one line."""
    import yaml

    from ferlab.errors import ConfigError

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{kind} file not found: {path}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read {kind} {path}: {str(err).splitlines()[0]}") from None


def torch_load_error_text(err: Exception) -> str:
    """One line on why torch.load refused a file. A weights-only refusal's own text advises loading with
    weights_only=False (running the file's code), so only the unpickler's reason is kept."""
    text = str(err).strip()
    marker = "WeightsUnpickler error:"
    if marker in text or text.startswith("Weights only load failed"):
        # the reason follows the marker, or (e.g. a blocked global such as os.system) the advice paragraph
        rest = text.split(marker, 1)[1] if marker in text else text.split("\n", 1)[-1]
        reason = next((line.strip() for line in rest.splitlines()
                       if line.strip() and not line.strip().startswith("Check the documentation")), "")
        return "refused by torch's weights-only loader" + (f" ({reason.split('. ')[0]})" if reason else "")
    first = text.splitlines()[0] if text else type(err).__name__
    if isinstance(err, (KeyError, IndexError, TypeError, AttributeError)):  # their text alone is e.g. "118"
        return f"unreadable pickle data ({type(err).__name__}: {first})"
    return first


def is_utf8_name(name: str) -> bool:
    """False for a file name holding bytes that are not UTF-8 (the file system gives them as lone surrogates):
    ids, JSON, CSV and reports cannot name such a file, and OpenCV's video reader crashes on one."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_name(name: str) -> str:
    """A file name that `is_utf8_name` refuses, with its undecodable bytes shown as U+FFFD, for messages."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
