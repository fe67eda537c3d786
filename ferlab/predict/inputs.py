"""Which files a run reads and what its outputs are called: folders walked, globs expanded, shards, unique stems.

`ferlab predict` and `ferlab explain` share these, so both read the same inputs in the same order.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from ferlab.data.sources.layout import IMAGE_SUFFIXES

__all__ = ["iter_inputs", "list_inputs", "output_stems", "parse_shard", "shard", "unique_stem"]


def _wanted_suffixes() -> frozenset[str]:
    from ferlab.predict.video import VIDEO_SUFFIXES

    return frozenset(IMAGE_SUFFIXES | set(VIDEO_SUFFIXES))


def _walk(folder: str, wanted: frozenset[str]) -> Iterator[str]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        yield from (os.path.join(root, f) for f in sorted(files) if Path(f).suffix.lower() in wanted)


def iter_inputs(paths: list[str]) -> Iterator[str]:
    """Files named, folders walked recursively in sorted order (image and video suffixes only), globs expanded
    (their folders walked, their files kept by the same suffixes), each path once."""
    wanted = _wanted_suffixes()
    seen: set[str] = set()
    for raw in paths:
        if os.path.isdir(raw):
            found: Iterator[str] = _walk(raw, wanted)
        elif glob.has_magic(raw):
            found = (f for match in sorted(glob.glob(raw, recursive=True))
                     for f in (_walk(match, wanted) if os.path.isdir(match)
                               else [match] if Path(match).suffix.lower() in wanted else []))
        else:
            found = iter([raw])
        for path in found:
            if path not in seen:  # `dir/**` matches a folder and the files inside it
                seen.add(path)
                yield path


def list_inputs(paths: list[str], *, images_only: bool = False) -> list[str]:
    """iter_inputs as a list (videos left out with `images_only`); ConfigError when folders and globs hold nothing
    to read, so an empty folder is named as such instead of failing later as 'nothing processed'.

    A path that is not valid UTF-8 is left out with a one-line notice on stderr: OpenCV's video reader crashes the
    process on one, and JSON, CSV and reports cannot name it.
    """
    from ferlab.errors import ConfigError
    from ferlab.io import is_utf8_name, printable_name
    from ferlab.predict.video import is_video_path

    found = [p for p in iter_inputs(paths) if not (images_only and is_video_path(p))]
    for bad in (p for p in found if not is_utf8_name(p)):
        print(f"ferlab: skipped {printable_name(bad)}: the file name is not valid UTF-8; rename it", file=sys.stderr)
    found = [p for p in found if is_utf8_name(p)]
    if not found:
        kind = "image" if images_only else "image or video"
        raise ConfigError(f"no {kind} files in {', '.join(paths)}")
    return found


def output_stems(paths: list[str]) -> dict[str, str]:
    """Each input's output name stem, given over the whole listing before it is sharded, so shards of one job
    array writing to one folder name a/x.png and b/x.png `x` and `x-2` as a single run would."""
    taken: set[str] = set()
    stems: dict[str, str] = {}
    for path in paths:
        if path not in stems:
            stems[path] = unique_stem(path, taken)
    return stems


def parse_shard(text: str | None) -> tuple[int, int]:
    """`i/n` (1-based) -> (i - 1, n); None -> the whole input (0, 1)."""
    from ferlab.errors import ConfigError

    if text is None:
        return 0, 1
    index, _, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise ConfigError(f"--shard expects i/n such as 2/8, got '{text}'") from None
    if not 1 <= i <= n:
        raise ConfigError(f"--shard {text}: i must be between 1 and n")
    return i - 1, n


def shard(items: Iterator[str], index: int, count: int) -> Iterator[str]:
    """Every `count`-th input starting at `index`: shards of one sorted listing are disjoint and cover it."""
    return (item for k, item in enumerate(items) if k % count == index)


def unique_stem(path: str, taken: set[str]) -> str:
    """The output name stem for an input: its file stem, or stem-2, stem-3 ... when an earlier input of the same
    run already used it (a/x.png and b/x.png), so no output overwrites another."""
    base = stem = Path(path).stem
    k = 1
    while stem in taken:
        k += 1
        stem = f"{base}-{k}"
    taken.add(stem)
    return stem
