"""Where a file sits tells its split and class: FER2013 file-name prefixes, split folders, class folders."""

from __future__ import annotations

from pathlib import PurePosixPath

from ferlab.labels import LABEL_ALIASES, canonical_label

__all__ = ["IMAGE_SUFFIXES", "FILE_PREFIX_SPLITS", "SPLIT_FOLDERS", "is_image_path", "place", "wrapper_folder"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm"})

#: FER2013 Kaggle file names carry the canonical split: `test/` holds both PublicTest and PrivateTest images.
FILE_PREFIX_SPLITS: dict[str, str] = {"Training_": "train", "PublicTest_": "test", "PrivateTest_": "private_test"}

#: Folder names (lower-cased) that mean a split rather than a class.
SPLIT_FOLDERS: dict[str, str] = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
    "publictest": "test",
    "public_test": "test",
    "privatetest": "private_test",
    "private_test": "private_test",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
}


#: Canonical names a folder is recognised as a class by, wherever it sits (the emotions and `contempt`).
KNOWN_LABELS = frozenset(LABEL_ALIASES.values())


def is_image_path(path: str) -> bool:
    return PurePosixPath(path).suffix.lower() in IMAGE_SUFFIXES


def place(path: str) -> tuple[str, str | None, bool]:
    """(split or "", canonical class or None, split_from_prefix) for a tree-relative POSIX path.

    The class is the nearest folder above the file named as a known label (the emotions with their aliases, and
    `contempt`), so `happy/subject01/x.png` is happy and so is `happy/test/x.png`; only folders above the class
    folder give the split. Without such a folder, the parent folder is the class (unknown names kept) unless it
    is a split folder or the root, and then the file has no class. The split comes from a FER2013 file-name
    prefix, else from the nearest split-named folder above the class folder, else "".
    """
    pure = PurePosixPath(path)
    dirs = pure.parts[:-1]
    for prefix, split in FILE_PREFIX_SPLITS.items():
        if pure.name.startswith(prefix):
            prefix_split = split
            break
    else:
        prefix_split = ""
    known = next((k for k in range(len(dirs) - 1, -1, -1) if canonical_label(dirs[k]) in KNOWN_LABELS), None)
    if known is not None:
        label, above = canonical_label(dirs[known]), dirs[:known]
    elif not dirs or dirs[-1].lower() in SPLIT_FOLDERS:
        label, above = None, dirs
    else:
        label, above = canonical_label(dirs[-1]), dirs[:-1]
    folder_split = next((SPLIT_FOLDERS[d.lower()] for d in reversed(above) if d.lower() in SPLIT_FOLDERS), "")
    return (prefix_split or folder_split), label, bool(prefix_split)


def wrapper_folder(paths: list[str]) -> str:
    """The one top-level folder every path sits in, as "name/", when it names neither a class nor a split, else "".

    `zip -r jaffe.zip jaffe` puts everything under `jaffe/`; that folder wraps the dataset rather than naming a
    class, so a file directly inside it is unlabelled, as it is when the folder itself is the source.
    """
    tops = {parts[0] if len(parts) > 1 else None for parts in (PurePosixPath(p).parts for p in paths)}
    if len(tops) != 1 or None in tops:
        return ""
    top = next(iter(tops))
    if canonical_label(top) in KNOWN_LABELS or top.lower() in SPLIT_FOLDERS:
        return ""
    return f"{top}/"
