"""Data layer: every source format, the CSV label-order trap, modes, cache, schemes, splits, audit, bad input."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from ferlab.cli.main import main
from ferlab.data import load, resolve_scheme
from ferlab.data.audit import audit, clean_exclusions
from ferlab.data.dataset import FaceDataset
from ferlab.data.synthetic import synthetic_faces, write_fer_csv, write_image_folder
from ferlab.errors import ConfigError, DataError
from ferlab.labels import EMOTIONS


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def small() -> FaceDataset:
    return synthetic_faces(n_per_class=5, seed=1)


@pytest.mark.parametrize("as_zip", [False, True])
def test_fer2013_layout_folder_and_zip_round_trip(tmp_path, small, as_zip):
    root = write_image_folder(small, tmp_path / ("fer.zip" if as_zip else "fer"), layout="fer2013")
    ds = load(root, progress=False)
    assert ds.classes == EMOTIONS
    assert len(ds) == len(small)
    assert ds.class_counts() == small.class_counts()
    assert ds.images.dtype == np.uint8 and ds.images.shape[1:] == (48, 48)


def test_prefixes_decide_the_split_inside_test_folder(tmp_path, small):
    face = _png(small.images[0])
    with zipfile.ZipFile(tmp_path / "mixed.zip", "w") as zf:
        zf.writestr("train/happy/Training_1.png", face)
        zf.writestr("test/happy/PublicTest_2.png", _png(small.images[1]))
        zf.writestr("test/sad/PrivateTest_3.png", _png(small.images[2]))
        zf.writestr("test/sad/PrivateTest_4.png", _png(small.images[3]))
    ds = load(tmp_path / "mixed.zip", progress=False)
    assert sorted(ds.splits.tolist()) == ["private_test", "private_test", "test", "train"]
    assert len(ds.split("private_test")) == 2


def test_test_split_falls_back_to_private_test_with_a_warning(tmp_path, small):
    with zipfile.ZipFile(tmp_path / "private.zip", "w") as zf:
        for i in range(4):
            zf.writestr(f"test/{EMOTIONS[i % 2]}/PrivateTest_{i}.png", _png(small.images[i]))
    ds = load(tmp_path / "private.zip", progress=False)
    with pytest.warns(UserWarning, match="PrivateTest"):
        assert len(ds.split("test")) == 4


@pytest.mark.parametrize("columns", [("emotion", "pixels", "Usage"), ("Usage", "pixels", "emotion")])
def test_csv_uses_its_own_label_ids_not_the_folder_order(tmp_path, small, columns):
    path = write_fer_csv(small, tmp_path / "fer.csv", columns=columns)
    header, first = path.read_text().splitlines()[:2]
    row = dict(zip(header.split(","), first.split(","), strict=True))
    name = small.classes[small.labels[0]]
    assert int(row["emotion"]) == {"angry": 0, "disgust": 1, "fear": 2, "happy": 3, "sad": 4, "surprise": 5,
                                   "neutral": 6}[name]
    ds = load(path, progress=False)
    assert ds.class_counts() == small.class_counts()
    # sad (CSV id 4) must not become neutral (alphabetical index 4)
    sad_rows = ds.images[ds.labels == EMOTIONS.index("sad")]
    assert any(np.array_equal(sad_rows[0], img) for img in small.images[small.labels == EMOTIONS.index("sad")])


@pytest.mark.parametrize(("text", "message"), [
    ("emotion,foo\n0,1 2\n", "columns"),
    ("emotion,pixels,Usage\n0,1 2 3,Training\n", "pixel string"),
    ("emotion,pixels,Usage\n9," + " ".join(["0"] * 2304) + ",Training\n", "unknown emotion id"),
])
def test_bad_csv_is_a_one_line_data_error(tmp_path, text, message):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        load(tmp_path / "bad.csv", progress=False)


def test_class_folders_map_aliases_and_keep_unknown_classes(tmp_path, small):
    root = tmp_path / "ck"
    for folder, idx in (("anger", 0), ("sadness", 1), ("contempt", 2), ("happiness", 3)):
        (root / folder).mkdir(parents=True)
        for k in range(3):
            (root / folder / f"{k}.png").write_bytes(_png(small.images[idx * 3 + k]))
    ds = load(root, progress=False)
    assert ds.classes == ("angry", "happy", "sad", "contempt")
    assert set(ds.split_names) <= {"train", "test"}
    assert ds.class_counts()["train"]["contempt"] + ds.class_counts().get("test", {}).get("contempt", 0) == 3


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16"])
def test_any_image_mode_and_size_becomes_48x48_gray(tmp_path, mode):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (100, 80, 3), dtype=np.uint8), "RGB")
    if mode == "I;16":  # a real 16-bit image uses the full 0..65535 range
        img = Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
    else:
        img = img.convert(mode)
    (tmp_path / "d" / "happy").mkdir(parents=True)
    (tmp_path / "d" / "sad").mkdir(parents=True)
    img.save(tmp_path / "d" / "happy" / "a.png")
    img.save(tmp_path / "d" / "sad" / "b.png")
    ds = load(tmp_path / "d", progress=False)
    assert ds.images.shape == (2, 48, 48)
    assert ds.images.std() > 0


def test_16_bit_data_decodes_alike_in_png_and_pgm():
    """PIL opens a 16-bit PGM as 32-bit mode I: it must still be value >> 8, as the 16-bit PNG is, not stretched."""
    from ferlab.data.decode import decode_image

    dark = np.random.default_rng(0).integers(1000, 2000, (48, 48)).astype(np.uint16)
    png = io.BytesIO()
    Image.fromarray(dark).save(png, "PNG")
    pgm = b"P5 48 48 65535\n" + dark.astype(">u2").tobytes()
    (as_png, _), (as_pgm, _) = decode_image(png.getvalue(), 48), decode_image(pgm, 48)
    assert np.array_equal(as_png, as_pgm) and np.array_equal(as_png, (dark >> 8).astype(np.uint8))


def test_cache_is_reused_and_invalidated_when_the_source_changes(tmp_path, small, monkeypatch):
    cache = tmp_path / "cache"
    root = write_image_folder(small, tmp_path / "fer.zip")
    first = load(root, cache_dir=cache, progress=False)
    files = sorted(p for p in cache.rglob("*") if p.is_file())
    assert files
    again = load(root, cache_dir=cache, progress=False)
    assert again.fingerprint == first.fingerprint
    assert sorted(p for p in cache.rglob("*") if p.is_file()) == files
    write_image_folder(synthetic_faces(n_per_class=4, seed=2), root)
    os.utime(root, (1, 1))
    changed = load(root, cache_dir=cache, progress=False)
    assert changed.fingerprint != first.fingerprint and len(changed) == 7 * 4


def test_unwritable_cache_dir_is_a_one_line_error(tmp_path, small):
    root = write_image_folder(small, tmp_path / "fer.zip")
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    with pytest.raises(DataError, match="not writable"):
        load(root, cache_dir=blocker / "cache", progress=False)


def test_corrupt_file_among_good_ones_is_skipped_and_listed(tmp_path, small):
    root = write_image_folder(small, tmp_path / "fer")
    (root / "train" / "happy" / "Training_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    ds = load(root, progress=False)
    assert len(ds) == len(small)
    assert len(ds.meta["corrupt_files"]) == 1
    assert audit(ds, near_duplicates=False).to_dict()["corrupt_files_count"] == 1


@pytest.mark.parametrize(("maker", "message"), [
    (lambda p: p / "missing.zip", "not found"),
    (lambda p: (p / "x.zip").write_bytes(b"hello") and p / "x.zip", "not a valid zip|not a supported"),
    (lambda p: zipfile.ZipFile(p / "e.zip", "w").close() or p / "e.zip", "empty|no images"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "empty"),
])
def test_bad_sources_are_one_line_errors(tmp_path, maker, message):
    with pytest.raises(DataError, match=message):
        load(maker(tmp_path), progress=False)


def test_zip_with_only_text_files_has_no_images(tmp_path):
    with zipfile.ZipFile(tmp_path / "t.zip", "w") as zf:
        zf.writestr("train/happy/readme.txt", "hi")
    with pytest.raises(DataError, match="no images"):
        load(tmp_path / "t.zip", progress=False)


def test_path_traversal_and_bomb_entries_are_refused(tmp_path, small):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train/happy/Training_1.png", _png(small.images[0]))
        zf.writestr("train/sad/Training_2.png", _png(small.images[1]))
        zf.writestr("../evil/sad/Training_3.png", _png(small.images[2]))
        zf.writestr("train/sad/Training_bomb.png", b"\0" * (60 * 1024 * 1024))
    ds = load(tmp_path / "evil.zip", progress=False)
    assert len(ds) == 2
    assert len(ds.meta["refused_entries"]) == 2
    assert not (tmp_path / "evil").exists()


def test_class_schemes_presets_custom_merge_and_errors(small):
    four = small.with_scheme(resolve_scheme("4"))
    assert four.classes == ("angry", "happy", "neutral", "sad") and len(four) == 4 * 5
    two = small.with_scheme(resolve_scheme("2"))
    assert two.classes == ("angry", "happy") and len(two) == 10
    merged = small.with_scheme(resolve_scheme("positive=happy,surprise;negative=angry,disgust,fear,sad"))
    assert merged.classes == ("positive", "negative")
    assert (merged.labels == 0).sum() == 10 and (merged.labels == 1).sum() == 20
    with pytest.raises(ConfigError, match="fewer than 2"):
        resolve_scheme("happy")
    with pytest.raises(ConfigError, match="two groups"):
        resolve_scheme("a=happy;b=happy,sad")


def test_validation_carve_is_stratified_and_deterministic():
    ds = synthetic_faces(n_per_class=20, seed=0, test_fraction=0.0)
    a, b = ds.with_validation(0.25, seed=3), ds.with_validation(0.25, seed=3)
    assert np.array_equal(a.splits, b.splits)
    assert all(v == 5 for v in a.class_counts()["val"].values())
    assert not np.array_equal(a.splits, ds.with_validation(0.25, seed=4).splits)


def _crafted() -> FaceDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (8, 48, 48), dtype=np.uint8)
    images[1] = images[0]  # duplicate inside train, same label
    images[2] = images[0]  # ... and in test: leakage
    images[4] = images[3]  # duplicate with another label: conflict
    images[5] = 128  # blank
    labels = np.array([0, 0, 0, 1, 2, 3, 1, 2])
    splits = np.array(["train", "train", "test", "train", "train", "train", "train", "test"])
    from ferlab.data.loader import content_hashes

    return FaceDataset(images=images, labels=labels, splits=splits, classes=EMOTIONS[:4],
                       ids=np.array([f"s{i}" for i in range(8)]), hashes=content_hashes(images), source="crafted")


def test_audit_finds_exactly_the_planted_problems():
    ds = _crafted()
    report = audit(ds).to_dict()
    assert report["exact_duplicate_groups"] == [["s0", "s1", "s2"], ["s3", "s4"]]
    assert report["cross_split_duplicate_groups"] == [["s0", "s1", "s2"]]
    assert report["label_conflict_groups"] == [["s3", "s4"]]
    assert report["blank_images"] == ["s5"]
    assert report["num_images"] == 8
    assert report["class_counts"]["test"] == {"angry": 1, "disgust": 0, "fear": 1, "happy": 0}


def test_blank_images_are_blank_not_near_duplicates_of_each_other():
    """Constant images all share one perceptual hash; a brightened copy of a real face still is a near duplicate."""
    from ferlab.data.loader import content_hashes

    rng = np.random.default_rng(1)
    face = rng.integers(0, 200, (48, 48), dtype=np.uint8)
    images = np.stack([np.full((48, 48), 10, np.uint8), np.full((48, 48), 200, np.uint8), face, face + 20,
                       rng.integers(0, 255, (48, 48), dtype=np.uint8)])
    ds = FaceDataset(images=images, labels=np.zeros(5, int), splits=np.array(["train"] * 5), classes=EMOTIONS[:2],
                     ids=np.array([f"s{i}" for i in range(5)]), hashes=content_hashes(images), source="crafted")
    report = audit(ds).to_dict()
    assert report["blank_images"] == ["s0", "s1"]
    assert report["near_duplicate_groups"] == [["s2", "s3"]]
    skipped = audit(ds, near_duplicates=False).to_dict()  # not searched is not "none found"
    assert skipped["near_duplicate_groups"] is None and skipped["near_duplicate_groups_count"] is None


def test_audit_text_says_near_duplicates_were_not_searched(tmp_path, small, capsys):
    from ferlab.cli.main import main

    root = write_image_folder(small, tmp_path / "fer.zip")
    assert main(["data", "audit", str(root), "--no-near-duplicates"]) == 0
    assert "near-duplicate groups    not searched (--no-near-duplicates)" in capsys.readouterr().out


def test_exclude_matches_whole_ids_only():
    """An id longer than every id of the dataset must not be cut to the ids' width and drop another image."""
    ds = _crafted()
    kept = ds.exclude({"s1.png.png", "s1" + "x" * 40, "s2"})
    assert sorted(kept.ids) == ["s0", "s1", "s3", "s4", "s5", "s6", "s7"]


def test_clean_policy_never_touches_test_and_drops_what_it_says():
    ds = _crafted()
    excluded = clean_exclusions(ds, audit(ds), ["duplicates", "blank", "conflicts", "leakage"])
    assert excluded == {"s1": ["duplicate", "leakage"], "s0": ["leakage"], "s4": ["duplicate", "label_conflict"],
                        "s3": ["label_conflict"], "s5": ["blank"]}


def test_audit_cli_json_keys_manifest_and_errors(tmp_path, small, capsys):
    root = write_image_folder(small, tmp_path / "fer.zip")
    assert main(["data", "audit", str(root), "--json", "--out", str(tmp_path / "out"), "--exclude", "duplicates"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("num_images", "class_counts", "corrupt_files", "blank_images", "exact_duplicate_groups",
                "cross_split_duplicate_groups", "label_conflict_groups", "near_duplicate_groups"):
        assert key in report
    assert report["num_images"] == len(small)
    for name in ("audit.json", "audit.txt", "class_distribution.png", "samples.png", "duplicates.png", "clean.json"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert main(["data", "audit", str(tmp_path / "nope.zip")]) == 2
    assert main(["data", "audit", str(root), "--exclude", "everything", "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ferlab: error: unknown --exclude")


def test_stats_cli_and_demo(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--per-class", "4"]) == 0
    assert (tmp_path / "demo" / "audit" / "audit.json").is_file()
    assert (tmp_path / "demo" / "stats" / "class_distribution.png").is_file()
    capsys.readouterr()
    assert main(["data", "stats", str(tmp_path / "demo" / "synthetic_faces.zip"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_images"] == 28


@pytest.mark.integration
@pytest.mark.slow
def test_shared_fer2013_zip_counts_and_audit(fer2013_zip):
    ds = load(fer2013_zip, progress=False)
    assert len(ds) == 32298
    assert ds.class_counts() == {
        "train": {"angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215, "neutral": 4965, "sad": 4830,
                  "surprise": 3171},
        "test": {"angry": 467, "disgust": 56, "fear": 496, "happy": 895, "neutral": 607, "sad": 653,
                 "surprise": 415},
    }
    report = audit(ds).to_dict()
    assert report["exact_duplicate_groups_count"] > 0
    assert 0 < report["cross_split_duplicate_groups_count"] <= report["exact_duplicate_groups_count"]
    assert 0 < report["label_conflict_groups_count"] <= report["exact_duplicate_groups_count"]
    assert report["blank_images_count"] > 0
    stds = ds.images[np.isin(ds.ids, report["blank_images"])].reshape(report["blank_images_count"], -1).std(axis=1)
    assert (stds < 3.0).all()


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny real PNG whose header claims `width` x `height` (valid CRC), as decompression bombs do."""
    import struct
    import zlib

    data = bytearray(_png(np.zeros((2, 2), np.uint8)))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def test_absurd_image_dimensions_are_refused(tmp_path, small):
    with zipfile.ZipFile(tmp_path / "dims.zip", "w") as zf:
        zf.writestr("train/happy/Training_1.png", _png(small.images[0]))
        zf.writestr("train/sad/Training_2.png", _png(small.images[1]))
        zf.writestr("train/sad/Training_huge.png", _png_claiming(50_000, 50_000))
    ds = load(tmp_path / "dims.zip", progress=False)
    assert len(ds) == 2
    assert any("Training_huge" in str(entry) for entry in ds.meta["refused_entries"])


def test_a_failed_cache_write_leaves_no_partial_file(tmp_path, small, monkeypatch):
    root = write_image_folder(small, tmp_path / "fer.zip")
    cache = tmp_path / "cache"

    def broken_savez(fh, **arrays):  # noqa: ANN001, ANN003
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(DataError, match="cannot write the dataset cache"):
        load(root, cache_dir=cache, progress=False)
    assert [p for p in cache.rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    assert len(load(root, cache_dir=cache, progress=False)) == len(small)


def _with_twins(ds: FaceDataset) -> FaceDataset:
    """`ds` where every image has an exact twin with the same label next to it (like FER2013's duplicates)."""
    from ferlab.data.loader import content_hashes

    images = ds.images.copy()
    images[1::2] = images[0::2]
    return FaceDataset(images=images, labels=ds.labels, splits=ds.splits, classes=ds.classes, ids=ds.ids,
                       hashes=content_hashes(images), source="twins")


def test_validation_carve_can_keep_copies_of_training_images_out():
    """FER2013's Training holds exact duplicates: with `no_copies` no validation image has a copy left in train."""
    ds = synthetic_faces(n_per_class=20, seed=0, test_fraction=0.0)
    twins = _with_twins(ds)
    plain, clean = twins.with_validation(0.25, seed=3), twins.with_validation(0.25, seed=3, no_copies=True)
    train_hashes = set(clean.hashes[clean.splits == "train"])
    assert np.isin(plain.hashes[plain.splits == "val"], list(set(plain.hashes[plain.splits == "train"]))).any()
    assert not any(h in train_hashes for h in clean.hashes[clean.splits == "val"])
    assert 0 < (clean.splits == "val").sum() < (plain.splits == "val").sum()  # only the copies moved back
    assert set(np.flatnonzero(clean.splits == "val")) <= set(np.flatnonzero(plain.splits == "val"))
    assert np.array_equal(ds.with_validation(0.25, seed=3, no_copies=True).splits,
                          ds.with_validation(0.25, seed=3).splits)  # no copies: the same carve


def test_evaluation_re_carves_validation_as_the_training_run_did():
    from ferlab.evaluate.run import with_training_validation
    from ferlab.train.config import TrainConfig
    from ferlab.train.data_prep import prepare_data

    twins = _with_twins(synthetic_faces(n_per_class=20, seed=0, test_fraction=0.2))
    for options in ({}, {"val_no_copies": True}, {"limit": 60}, {"classes": "4", "limit": 50}):
        cfg = TrainConfig(data="twins", val_fraction=0.25, seed=3, progress=False, **options)
        run = prepare_data(cfg, twins.image_size, dataset=twins)
        carved = with_training_validation(twins, cfg.to_dict())
        val = carved.split("val")
        assert len(run.val_labels) == len(val) > 0, options
        assert np.array_equal(run.val_labels.numpy(), val.labels), options
        assert np.array_equal(run.val_images.numpy(), val.images.reshape(run.val_images.shape)), options
        assert len(run.train_labels) == (carved.splits == "train").sum(), options  # the leakage-free reference


def test_val_seed_shares_one_validation_split_across_training_seeds():
    """Ensemble members train with their own seeds but must select on the same validation images."""
    from ferlab.evaluate.run import with_training_validation
    from ferlab.train.config import TrainConfig

    ds = synthetic_faces(n_per_class=20, seed=0, test_fraction=0.0)
    carve = {seed: with_training_validation(ds, TrainConfig(seed=seed, val_seed=3).to_dict()).splits
             for seed in (0, 1)}
    assert np.array_equal(carve[0], carve[1])
    assert np.array_equal(carve[0], with_training_validation(ds, TrainConfig(seed=3).to_dict()).splits)
    assert not np.array_equal(carve[0], with_training_validation(ds, TrainConfig(seed=0).to_dict()).splits)
    legacy = {"val_fraction": 0.1, "seed": 3}  # a config.yaml from before val_seed existed
    assert np.array_equal(carve[0], with_training_validation(ds, legacy).splits)


def test_foreign_validation_scores_two_models_on_images_neither_trained_on():
    """A smaller carve with the same seed is a prefix of a larger one: a model trained outside the larger carve
    may be scored on the smaller; the model trained on the larger carve's images may not be scored on it."""
    from ferlab.evaluate.run import foreign_validation, with_training_validation

    ds = synthetic_faces(n_per_class=40, seed=0, test_fraction=0.0)
    wide, narrow = {"val_fraction": 0.25, "seed": 0}, {"val_fraction": 0.1, "seed": 0}
    carved, train_hashes = foreign_validation(ds, narrow, [wide, narrow], carve_name="narrow")
    narrow_val = with_training_validation(ds, narrow)
    assert np.array_equal(carved.splits, narrow_val.splits)
    wide_val_ids = set(with_training_validation(ds, wide).ids[with_training_validation(ds, wide).splits == "val"])
    assert set(carved.ids[carved.splits == "val"]) < wide_val_ids
    assert set(train_hashes) == set(ds.hashes[narrow_val.splits == "train"])  # the union of both models' training
    with pytest.raises(DataError, match=r"trained on \d+ of the \d+ validation images of wide"):
        foreign_validation(ds, wide, [narrow], carve_name="wide")
    with pytest.raises(DataError, match="records no training config"):
        foreign_validation(ds, narrow, [{}])
    with pytest.raises(DataError, match="names no validation carve"):
        foreign_validation(ds, {}, [wide])


def test_api_misuse_is_a_clear_error_or_works(tmp_path, small):
    """Plausible notebook calls: each either works or raises ferlab's own one-line error."""
    from ferlab.errors import ConfigError

    root = write_image_folder(small, tmp_path / "fer.zip")
    for bad in ("abc", None, 4.5):
        with pytest.raises(ConfigError, match="image_size must be a whole number"):
            load(root, image_size=bad, progress=False)
    flat = tmp_path / "flat"
    for k, name in enumerate(("happy", "sad")):
        (flat / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((48, 48), 40 * k + i, np.uint8)).save(flat / name / f"{i}.png")
    for bad in (-0.5, 0.0, 1.0, 2.0):
        with pytest.raises(ConfigError, match="test_fraction must be in"):
            load(flat, test_fraction=bad, progress=False)
    ds = load(root, progress=False)
    assert len(ds.subset([])) == 0  # an empty selection, as a comprehension gives it
    assert ds.with_scheme("2").classes == ("angry", "happy")  # a spec, resolved
    assert len(ds.exclude(str(ds.ids[0]))) == len(ds) - 1  # one id as a string, not a set of its characters
    with pytest.raises(DataError, match="validation fraction must be a number"):
        ds.with_validation("0.1")
