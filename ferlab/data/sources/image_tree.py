"""Image-folder sources (folder or zip): the FER2013 Kaggle layout and any class-per-folder face dataset."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ferlab.data.decode import decode_image
from ferlab.data.sources.base import DecodedSource, order_classes
from ferlab.data.sources.layout import is_image_path, place, wrapper_folder
from ferlab.data.sources.trees import FileTree, FolderTree, ZipTree
from ferlab.errors import DataError, ImageDecodeError, UnsafeArchiveError

__all__ = ["ImageFolderReader", "ImageZipReader", "read_tree"]


def read_tree(tree: FileTree, *, image_size: int, progress: bool) -> DecodedSource:
    """Decode every image of `tree`; corrupt files are skipped and listed, unsafe ones refused and listed."""
    all_entries = tree.entries()
    entries = [e for e in all_entries if is_image_path(e.path)]
    refused = [{"id": p, "reason": r} for p, r in tree.refused()]
    if not all_entries and not refused:
        raise DataError(f"{tree.root} is empty")
    if not entries and not refused:
        raise DataError(f"{tree.root} holds no images ({len(all_entries)} other files; "
                        f"expected .jpg/.png/... in class folders)")
    images = np.empty((len(entries), image_size, image_size), dtype=np.uint8)
    keep: list[int] = []
    corrupt: list[dict] = []
    sizes: dict[str, list[int]] = {}
    for i, entry in enumerate(tqdm(entries, desc=f"decoding {tree.root.name}", unit="img", disable=not progress,
                                   leave=False)):
        try:
            images[i], (w, h) = decode_image(tree.read(entry), image_size)
        except UnsafeArchiveError as err:
            refused.append({"id": entry.path, "reason": str(err)})
            continue
        except ImageDecodeError as err:
            corrupt.append({"id": entry.path, "error": str(err)})
            continue
        if (w, h) != (image_size, image_size):
            sizes[entry.path] = [w, h]
        keep.append(i)
    if not keep:
        details = "; ".join(f"{d['id']}: {d.get('reason') or d.get('error')}" for d in (refused + corrupt)[:3])
        raise DataError(f"no valid image in {tree.root} ({len(corrupt)} corrupt, {len(refused)} refused: {details})")
    kept = [entries[i] for i in keep]
    wrapper = wrapper_folder([e.path for e in kept])  # ids keep the real path; only the layout ignores it
    placed = [place(e.path.removeprefix(wrapper)) for e in kept]
    unlabelled = [e.path for e, (_, label, _) in zip(kept, placed, strict=True) if label is None]
    if len(unlabelled) == len(kept):
        raise DataError(f"no image in {tree.root} sits in a class folder ({len(kept)} images directly in "
                        f"{'a split folder' if any(s for s, _, _ in placed) else 'the root'}); expected "
                        "[split/]class/image, e.g. train/happy/0001.png")
    classes = order_classes({label for _, label, _ in placed if label is not None})
    index = {c: i for i, c in enumerate(classes)}
    return DecodedSource(
        images=images[keep],
        labels=np.array([index[lab] if lab is not None else -1 for _, lab, _ in placed], dtype=np.int64),
        splits=np.array([split for split, _, _ in placed], dtype="<U12"),
        ids=np.array([e.path for e in kept], dtype=str),
        classes=classes,
        meta={
            "layout": "fer2013" if any(p for _, _, p in placed) else "class-folders",
            "corrupt_files": corrupt,
            "refused_entries": refused,
            "skipped_files": len(all_entries) - len(entries) + tree.hidden_files(),
            "unlabelled_files": unlabelled,
            "original_sizes": sizes,
        },
    )


class ImageZipReader:
    """A zip of image folders (FER2013 Kaggle zip, CK+-style class folders, ...), read in place."""

    name = "image-zip"

    def claims(self, path: Path) -> bool:
        return path.is_file() and (path.suffix.lower() == ".zip" or zipfile.is_zipfile(path))

    def fingerprint(self, path: Path) -> dict:
        st = path.stat()
        return {"kind": "zip", "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def read(self, path: Path, *, image_size: int, progress: bool) -> DecodedSource:
        with ZipTree(path) as tree:
            return read_tree(tree, image_size=image_size, progress=progress)


class ImageFolderReader:
    """A folder of image folders: `[split/]class/*.jpg`."""

    name = "image-folder"

    def claims(self, path: Path) -> bool:
        return path.is_dir()

    def fingerprint(self, path: Path) -> dict:
        return FolderTree(path).fingerprint()

    def read(self, path: Path, *, image_size: int, progress: bool) -> DecodedSource:
        return read_tree(FolderTree(path), image_size=image_size, progress=progress)
