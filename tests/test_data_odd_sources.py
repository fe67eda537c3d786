"""Odd but real-world sources: bad CSV rows, non-UTF-8 names and CSVs, nested folders, unlabelled images, zips with
repeated or backslash names; and what `ferlab data stats|audit` say about everything the class table leaves out."""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from ferlab.cli.main import main
from ferlab.data import load
from ferlab.data.audit import audit
from ferlab.errors import DataError


def _png(value: int, side: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(value).integers(0, 256, (side, side), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _pixels(value: int, side: int = 48) -> str:
    return " ".join(map(str, np.random.default_rng(value).integers(0, 256, side * side)))


def _tree(root, files: dict[str, bytes]):  # noqa: ANN001, ANN202
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


# --- CSV ---------------------------------------------------------------------------------------------


def test_malformed_csv_rows_are_skipped_and_listed_with_their_line(tmp_path):
    lines = ["emotion,pixels,Usage", f"3,{_pixels(0)},Training", "3,1 2 3,Training", f"9,{_pixels(1)},Training",
             "", f"4,{_pixels(2)},PublicTest", f"4,{_pixels(3)},Bogus", f"0,{_pixels(4, side=100)},Training"]
    (tmp_path / "f.csv").write_text("\n".join(lines) + "\n")
    ds = load(tmp_path / "f.csv", progress=False)
    assert len(ds) == 3 and ds.images.shape[1:] == (48, 48)  # the 100 x 100 row is resized, not refused
    assert [ds.classes[i] for i in ds.labels] == ["happy", "sad", "angry"]
    bad = ds.meta["corrupt_files"]
    assert [b["id"] for b in bad] == ["f.csv:line 3", "f.csv:line 4", "f.csv:line 7"]
    assert "pixel string has 3 values" in bad[0]["error"] and "unknown emotion id 9" in bad[1]["error"]
    assert "unknown Usage 'Bogus'" in bad[2]["error"]
    assert list(ds.ids) == ["csv:0", "csv:3", "csv:5"]  # ids count records, so skipping a row renames no other


def test_csv_of_large_faces_loads_past_the_csv_field_limit(tmp_path):
    (tmp_path / "big.csv").write_text(f"emotion,pixels\n3,{_pixels(0, side=200)}\n")  # ~140 KB pixel field
    ds = load(tmp_path / "big.csv", progress=False)
    assert len(ds) == 1 and ds.meta["original_sizes"] == {"*": [200, 200]}
    import csv

    assert csv.field_size_limit() == 131072  # the process-wide limit is restored


@pytest.mark.parametrize("content", [
    "emotion,pixels\n3,caf\xe9\n".encode("latin-1"),
    _png(0),
])
def test_a_csv_that_is_not_utf8_text_is_one_line(tmp_path, content):
    (tmp_path / "x.csv").write_bytes(content)
    with pytest.raises(DataError, match=r"is not a UTF-8 text CSV \(it holds byte 0x"):
        load(tmp_path / "x.csv", progress=False)


def test_a_csv_with_no_valid_row_names_the_first_problems(tmp_path):
    (tmp_path / "x.csv").write_text("emotion,pixels\n3,1 2\nx,1\n")
    with pytest.raises(DataError, match=r"no valid row in .* \(2 malformed: x.csv:line 2: pixel string"):
        load(tmp_path / "x.csv", progress=False)


def test_a_csv_without_its_header_row_is_a_short_error(tmp_path):
    (tmp_path / "x.csv").write_text("0," + _pixels(0) + ",Training\n")
    with pytest.raises(DataError) as caught:
        load(tmp_path / "x.csv", progress=False)
    message = str(caught.value)
    assert len(message) < 300 and "missing emotion,pixels" in message and "is the header row missing?" in message


# --- folders and zips --------------------------------------------------------------------------------


def test_the_class_is_the_nearest_emotion_folder_above_extra_levels(tmp_path):
    root = _tree(tmp_path / "d", {"train/happy/S01/a.png": _png(0), "train/happy/S02/b.png": _png(1),
                                  "train/sad/S01/c.png": _png(2), "test/S03/anger/d.png": _png(3),
                                  "train/contempt/e.png": _png(4), "train/subjects/S09/f.png": _png(5)})
    ds = load(root, progress=False)
    rows = zip(ds.ids, ds.labels, ds.splits, strict=True)
    named = {i.rsplit("/", 1)[-1]: (ds.classes[lab], split) for i, lab, split in rows}
    assert named == {"a.png": ("happy", "train"), "b.png": ("happy", "train"), "c.png": ("sad", "train"),
                     "d.png": ("angry", "test"), "e.png": ("contempt", "train"), "f.png": ("s09", "train")}


def test_contempt_and_split_named_folders_inside_a_class_keep_the_class(tmp_path):
    """CK+-style subject folders under contempt/ stay contempt (they became classes s005, s010), and a stray
    test/ folder inside a class folder is an extra level, not a split that leaves its images unlabelled."""
    root = _tree(tmp_path / "ck", {"happy/S005/a.png": _png(0), "contempt/S005/b.png": _png(1),
                                   "contempt/S010/c.png": _png(2), "happy/test/d.png": _png(3)})
    ds = load(root, progress=False)
    named = {i.rsplit("/", 1)[-1]: ds.classes[lab] for i, lab in zip(ds.ids, ds.labels, strict=True)}
    assert named == {"a.png": "happy", "b.png": "contempt", "c.png": "contempt", "d.png": "happy"}
    assert not ds.meta.get("unlabelled_files")


def test_symbolic_links_are_followed_once_and_broken_ones_refused(tmp_path):
    from ferlab.data.sources.trees import FolderTree

    root = _tree(tmp_path / "ds", {"happy/a.png": _png(0), "sad/b.png": _png(1)})
    _tree(tmp_path / "elsewhere", {"angry/c.png": _png(2), "face.png": _png(3)})
    (root / "angry").symlink_to(tmp_path / "elsewhere" / "angry")  # a linked class folder
    (root / "happy" / "linked.png").symlink_to(tmp_path / "elsewhere" / "face.png")
    (root / "sad" / "loop").symlink_to(root)  # a link back up the tree is walked once
    (root / "sad" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    ds = load(root, progress=False)
    assert sorted(ds.ids) == ["angry/c.png", "happy/a.png", "happy/linked.png", "sad/b.png"]
    assert ("sad/gone.png", "broken symbolic link") in FolderTree(root).refused()
    before = FolderTree(root).fingerprint()
    (tmp_path / "elsewhere" / "face.png").write_bytes(_png(4) + b"\0")  # the link's target changes
    assert FolderTree(root).fingerprint() != before


def test_unlabelled_images_are_counted_and_a_source_without_classes_refused(tmp_path, capsys):
    root = _tree(tmp_path / "e", {"0.png": _png(0), "train/x.png": _png(1), "train/happy/a.png": _png(2),
                                  "train/sad/b.png": _png(3), "notes.txt": b"hi"})
    ds = load(root, progress=False)
    assert sorted(ds.meta["unlabelled_files"]) == ["0.png", "train/x.png"]
    report = audit(ds, near_duplicates=False).to_dict()
    assert report["unlabelled_files_count"] == 2 and report["skipped_files"] == 1
    assert main(["data", "stats", str(root), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["unlabelled_files_count"] == 2 and stats["skipped_files_count"] == 1
    assert main(["data", "stats", str(root)]) == 0
    assert "not in the table: 2 unlabelled files, 1 skipped files" in capsys.readouterr().out

    flat = _tree(tmp_path / "g", {"a.png": _png(0), "b.png": _png(1)})
    with pytest.raises(DataError, match="no image in .* sits in a class folder"):
        load(flat, progress=False)


def test_an_unlabelled_copy_is_no_duplicate_conflict_or_kept_copy(tmp_path):
    root = _tree(tmp_path / "u", {"stray.png": _png(3), "happy/3.png": _png(3), "happy/4.png": _png(4),
                                  "sad/5.png": _png(5), "sad/6.png": _png(6)})
    report = audit(load(root, progress=False, use_cache=False), near_duplicates=True)
    assert report.unlabelled_files == ["stray.png"] and report.num_images == 4
    assert report.exact_duplicate_groups == [] and report.label_conflict_groups == []


def test_a_zip_of_a_wrapping_folder_has_the_classes_of_the_folder(tmp_path):
    files = {"jaffe/happy/a.png": _png(0), "jaffe/happy/b.png": _png(1), "jaffe/sad/c.png": _png(2),
             "jaffe/sad/d.png": _png(3), "jaffe/cover.png": _png(4), "jaffe/.hidden.png": _png(5),
             "jaffe/.more/sad/e.png": _png(6)}
    _tree(tmp_path, files)
    with zipfile.ZipFile(tmp_path / "jaffe.zip", "w") as zf:
        for rel, data in files.items():
            zf.writestr(rel, data)
    folder = load(tmp_path / "jaffe", progress=False, use_cache=False)
    archive = load(tmp_path / "jaffe.zip", progress=False, use_cache=False)
    assert folder.classes == archive.classes == ("happy", "sad")
    assert folder.meta["unlabelled_files"] == ["cover.png"] and archive.meta["unlabelled_files"] == ["jaffe/cover.png"]
    assert folder.meta["skipped_files"] == archive.meta["skipped_files"] == 2  # the hidden file and hidden folder
    happy = _tree(tmp_path / "h", {"happy/a.png": _png(0), "happy/b.png": _png(1)})
    with zipfile.ZipFile(tmp_path / "happy.zip", "w") as zf:  # a class folder zipped alone stays that class
        for rel in ("happy/a.png", "happy/b.png"):
            zf.write(happy / rel, rel)
    assert load(tmp_path / "happy.zip", progress=False, use_cache=False).classes == ("happy",)


def test_images_outside_split_folders_are_counted_as_train_and_said(tmp_path, capsys):
    root = _tree(tmp_path / "s", {"train/happy/a.png": _png(0), "train/sad/b.png": _png(1),
                                  "test/happy/c.png": _png(2), "test/sad/d.png": _png(3), "happy/e.png": _png(4)})
    ds = load(root, progress=False, use_cache=False)
    assert ds.meta["train_by_default"] == 1 and ds.class_counts()["train"]["happy"] == 2
    assert main(["data", "stats", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["train_by_default_count"] == 1
    assert main(["data", "audit", str(root), "--no-near-duplicates"]) == 0
    assert "in no split folder       1 (counted as train)" in capsys.readouterr().out


def test_long_class_names_keep_their_columns_apart(tmp_path, capsys):
    root = _tree(tmp_path / "l", {"contempt/a.png": _png(0), "embarrassment/b.png": _png(1), "happy/c.png": _png(2)})
    assert main(["data", "stats", str(root)]) == 0
    header = capsys.readouterr().out.splitlines()[1].split()
    assert header == ["split", "happy", "contempt", "embarrassment", "total"]


def test_a_csv_row_with_an_empty_usage_is_skipped_and_listed(tmp_path):
    lines = ["emotion,pixels,Usage", f"3,{_pixels(0)},Training", f"4,{_pixels(1)},PublicTest", f"3,{_pixels(2)},"]
    (tmp_path / "e.csv").write_text("\n".join(lines) + "\n")
    ds = load(tmp_path / "e.csv", progress=False, use_cache=False)
    assert len(ds) == 2
    assert [(b["id"], b["error"]) for b in ds.meta["corrupt_files"]] == [
        ("e.csv:line 4", "empty Usage (Training, PublicTest, PrivateTest)")]


def test_the_dimension_refusal_names_the_limit_it_hit():
    from ferlab.data.decode import decode_image
    from ferlab.errors import UnsafeArchiveError

    buf = io.BytesIO()
    Image.new("L", (20_001, 1)).save(buf, "PNG")
    with pytest.raises(UnsafeArchiveError, match=r"20001x1 \(limit 20,000 px per side\)"):
        decode_image(buf.getvalue(), 48)


def test_zip_entries_with_one_name_or_backslashes(tmp_path):
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("happy/0.png", _png(0))
        zf.writestr("happy/0.png", _png(1))  # a second entry of the same name
        zf.writestr("train\\sad\\1.png", _png(2))  # Windows separators
    ds = load(path, progress=False)
    assert list(ds.ids) == ["happy/0.png", "train/sad/1.png"]
    assert [ds.classes[i] for i in ds.labels] == ["happy", "sad"] and ds.splits[1] == "train"
    assert np.array_equal(ds.images[0], np.asarray(Image.open(io.BytesIO(_png(0)))))  # the first entry is read
    assert ds.meta["refused_entries"] == [{"id": "happy/0.png",
                                           "reason": "a second zip entry with the same name (the first one is read)"}]


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that stores raw name bytes")
def test_a_file_name_that_is_not_utf8_is_refused_and_the_rest_loads(tmp_path):
    root = _tree(tmp_path / "u", {"happy/a.png": _png(0), "sad/b.png": _png(1)})
    with open(os.path.join(os.fsencode(root / "happy"), b"caf\xe9.png"), "wb") as fh:
        fh.write(_png(2))
    ds = load(root, progress=False)
    assert len(ds) == 2
    assert ds.meta["refused_entries"] == [{"id": "happy/caf\ufffd.png", "reason": "file name is not valid UTF-8"}]


def test_corrupt_and_empty_files_are_described_without_memory_addresses(tmp_path):
    root = _tree(tmp_path / "c", {"happy/a.png": _png(0), "sad/b.png": _png(1), "sad/bad.png": b"not an image",
                                  "sad/empty.png": b""})
    errors = {c["id"]: c["error"] for c in load(root, progress=False).meta["corrupt_files"]}
    assert errors["sad/empty.png"] == "empty file (0 bytes)"
    assert errors["sad/bad.png"].startswith("UnidentifiedImageError: cannot identify image file")
    assert "0x" not in errors["sad/bad.png"]


def test_the_skipped_notice_repeats_on_a_cached_load(tmp_path, capsys):
    root = _tree(tmp_path / "c", {"happy/a.png": _png(0), "sad/b.png": _png(1), "sad/bad.png": b"junk"})
    for _ in range(2):  # the second load comes from the cache
        load(root, progress=True)
        assert "1 corrupt and 0 refused files skipped" in capsys.readouterr().err


def test_exclude_is_checked_before_decoding_and_ignores_case(tmp_path, capsys, monkeypatch):
    import ferlab.data

    root = _tree(tmp_path / "d", {"happy/a.png": _png(0), "sad/b.png": _png(1), "sad/c.png": _png(0)})
    monkeypatch.setattr(ferlab.data, "load", lambda *a, **k: pytest.fail("decoded before checking flags"))
    assert main(["data", "audit", str(root), "--exclude", "duplicates"]) == 2
    assert capsys.readouterr().err.strip() == "ferlab: error: --exclude writes a manifest: give --out DIR too"
    monkeypatch.undo()
    assert main(["data", "audit", str(root), "--exclude", "Duplicates", "--out", str(tmp_path / "o"), "--json"]) == 0
    manifest = json.loads((tmp_path / "o" / "clean.json").read_text())
    assert manifest["policy"] == ["duplicates"]


def test_an_audit_removes_a_clean_manifest_of_other_data_from_its_out_folder(tmp_path, capsys):
    first = _tree(tmp_path / "one", {"happy/a.png": _png(0), "happy/b.png": _png(0), "sad/c.png": _png(2)})
    second = _tree(tmp_path / "two", {"happy/a.png": _png(5), "sad/c.png": _png(6)})
    out = tmp_path / "au"
    assert main(["data", "audit", str(first), "--out", str(out), "--exclude", "duplicates"]) == 0
    assert main(["data", "audit", str(first), "--out", str(out)]) == 0  # same data: its manifest stays
    assert (out / "clean.json").is_file()
    with pytest.warns(UserWarning, match="removed .*clean.json"):
        assert main(["data", "audit", str(second), "--out", str(out)]) == 0
    assert not (out / "clean.json").exists() and json.loads((out / "audit.json").read_text())["source"].endswith("two")
