"""`ferlab predict`: --shard partitions, --csv rows, --out annotated images, bad --shard."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ferlab.cli.main import main
from ferlab.models import create_model
from ferlab.train.checkpoint import FORMAT, VERSION, save_checkpoint

CLASSES = ["angry", "happy", "sad"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict-out")
    torch.manual_seed(0)
    model = create_model("simple_cnn", num_classes=3)
    ckpt = save_checkpoint(root / "m.pt", {"format": FORMAT, "version": VERSION, "model_name": "simple_cnn",
                                           "model_kwargs": {}, "classes": CLASSES, "image_size": 48,
                                           "config": {}, "epoch": 1, "metrics": {},
                                           "model_state": model.state_dict()})
    crops = root / "crops" / "nested"
    crops.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(7):
        Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(crops / f"face{k}.png")
    return {"ckpt": ckpt, "crops": root / "crops"}


def _paths(capsys) -> list[str]:
    return [json.loads(line)["path"] for line in capsys.readouterr().out.strip().splitlines()]


def test_shards_are_disjoint_and_cover_the_folder(setup, capsys):
    base = ["predict", str(setup["crops"]), "--model", str(setup["ckpt"]), "--no-detect", "--json"]
    assert main(base) == 0
    everything = _paths(capsys)
    parts = []
    for i in (1, 2, 3):
        assert main([*base, "--shard", f"{i}/3"]) == 0
        parts.append(_paths(capsys))
    assert sorted(p for part in parts for p in part) == sorted(everything) and len(everything) == 7
    assert all(set(a).isdisjoint(b) for a in parts for b in parts if a is not b)


def test_csv_rows_and_annotated_images(setup, tmp_path, capsys):
    assert main(["predict", str(setup["crops"]), "--model", str(setup["ckpt"]), "--no-detect",
                 "--csv", str(tmp_path / "faces.csv"), "--out", str(tmp_path / "annotated")]) == 0
    rows = list(csv.DictReader((tmp_path / "faces.csv").open()))
    assert len(rows) == 7 and {r["label"] for r in rows} <= set(CLASSES)
    assert all(abs(sum(float(r[c]) for c in CLASSES) - 1) < 1e-3 for r in rows)
    pictures = sorted((tmp_path / "annotated").glob("*.annotated.png"))
    assert len(pictures) == 7
    original = np.asarray(Image.open(setup["crops"] / "nested" / "face0.png").convert("RGB"))
    assert not np.array_equal(np.asarray(Image.open(pictures[0])), original)


@pytest.mark.parametrize("bad", ["0/3", "4/3", "x/y", "2"])
def test_bad_shard_is_a_one_line_error(setup, capsys, bad):
    assert main(["predict", str(setup["crops"]), "--model", str(setup["ckpt"]), "--shard", bad]) == 2
    assert capsys.readouterr().err.strip().startswith("ferlab: error: --shard")


@pytest.mark.parametrize("where", ["empty", "text_only", "glob"])
def test_a_folder_or_glob_without_images_names_itself(setup, tmp_path, capsys, where):
    folder = tmp_path / "nothing"
    folder.mkdir()
    if where == "text_only":
        (folder / "notes.txt").write_text("not a face")
    target = str(folder / "*.png") if where == "glob" else str(folder)
    csv_path = tmp_path / "rows.csv"
    assert main(["predict", target, "--model", str(setup["ckpt"]), "--no-detect", "--csv", str(csv_path)]) == 2
    assert capsys.readouterr().err.strip() == f"ferlab: error: no image or video files in {target}"
    assert not csv_path.exists()  # refused before any output is opened


def test_an_out_folder_that_is_a_file_is_a_one_line_error(setup, tmp_path, capsys):
    blocker = tmp_path / "report.txt"
    blocker.write_text("keep me")
    for out in (blocker, blocker / "annotated"):
        assert main(["predict", str(setup["crops"]), "--model", str(setup["ckpt"]), "--no-detect",
                     "--out", str(out)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"ferlab: error: {blocker} is a file, so no folder can be made there"]
    assert blocker.read_text() == "keep me"


def test_os_error_text_names_the_path_and_the_reason(tmp_path):
    from ferlab.cli.main import os_error_text

    missing = tmp_path / "gone" / "x.csv"
    assert os_error_text(FileNotFoundError(2, "No such file or directory", str(missing))) == \
        f"{missing}: No such file or directory"
    assert os_error_text(PermissionError(13, "Permission denied", "/root/x")) == "/root/x: Permission denied"
    assert os_error_text(OSError(28, "No space left on device")) == "No space left on device"


@pytest.mark.parametrize("size", ["0", "-1"])
def test_a_batch_size_under_one_is_a_one_line_error(setup, capsys, size):
    assert main(["predict", str(setup["crops"]), "--model", str(setup["ckpt"]), "--no-detect",
                 "--batch-size", size]) == 2
    assert capsys.readouterr().err.strip() == f"ferlab: error: --batch-size must be >= 1, got {size}"


def test_a_shard_past_the_inputs_has_nothing_to_do_and_succeeds(setup, capsys):
    assert main(["predict", str(setup["crops"]), "--model", str(setup["ckpt"]), "--no-detect", "--json",
                 "--shard", "9/9"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "shard 9/9 holds none of the 7 inputs" in captured.err


def test_an_unreadable_image_line_names_its_path_once(setup, tmp_path, capsys):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"not an image")
    assert main(["predict", str(bad), "--model", str(setup["ckpt"]), "--no-detect"]) == 1
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{bad}: ") and line.count(str(bad)) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--epochs", "abc"], "ferlab: error: train: argument --epochs: invalid int value: 'abc'"),
    (["eval", "--tta", "bogus"], "ferlab: error: eval: argument --tta: invalid choice: 'bogus'"),
    (["nosuchcommand"], "ferlab: error: argument COMMAND: invalid choice: 'nosuchcommand'"),
])
def test_flag_errors_are_one_line_without_the_usage_block(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(message) and err[0].endswith("--help`)")


def test_half_without_bundle_is_refused(setup, tmp_path, capsys):
    assert main(["export", str(setup["ckpt"]), "--onnx", str(tmp_path / "m.onnx"), "--half"]) == 2
    assert "--half only applies with --bundle" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_inputs_with_one_name_get_separate_annotated_files(setup, tmp_path, capsys):
    from ferlab.predict.inputs import unique_stem

    for sub in ("a", "b"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        Image.fromarray(np.full((48, 48), 60 if sub == "a" else 200, np.uint8)).save(tmp_path / "in" / sub / "x.png")
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "in"), "--model", str(setup["ckpt"]), "--no-detect", "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["x-2.annotated.png", "x.annotated.png"]
    assert not np.array_equal(np.asarray(Image.open(out / written[0])), np.asarray(Image.open(out / written[1])))
    taken: set[str] = set()
    assert [unique_stem(p, taken) for p in ("a/x.png", "b/x.png", "c/x-2.png", "d/x.mp4")] == ["x", "x-2", "x-2-2",
                                                                                                "x-3"]


def test_a_csv_path_that_is_a_folder_is_named_in_the_error(setup, tmp_path, capsys):
    assert main(["predict", str(setup["crops"]), "--model", str(setup["ckpt"]), "--no-detect",
                 "--csv", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == f"ferlab: error: {tmp_path}: is a folder, not a file"
    assert not list(tmp_path.glob(".*.tmp"))


def _two_x(tmp_path):  # noqa: ANN001, ANN202 - a/x.png (dark) and b/x.png (bright)
    for sub, grey in (("a", 60), ("b", 200)):
        (tmp_path / "in" / sub).mkdir(parents=True)
        Image.fromarray(np.full((48, 48), grey, np.uint8)).save(tmp_path / "in" / sub / "x.png")
    return tmp_path / "in"


def test_shards_writing_to_one_out_folder_name_outputs_as_one_run_would(setup, tmp_path, capsys):
    folder = _two_x(tmp_path)
    for part in ("1/2", "2/2"):
        assert main(["predict", str(folder), "--model", str(setup["ckpt"]), "--no-detect", "--out",
                     str(tmp_path / "out"), "--shard", part]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x-2.annotated.png", "x.annotated.png"]


def test_globs_walk_the_folders_they_match_and_keep_only_images(setup, tmp_path, capsys):
    folder = _two_x(tmp_path)
    (folder / "notes.txt").write_text("not a face")
    for pattern in (f"{folder}/*", f"{folder}/**"):
        assert main(["predict", pattern, "--model", str(setup["ckpt"]), "--no-detect", "--json"]) == 0
        assert _paths(capsys) == [str(folder / "a" / "x.png"), str(folder / "b" / "x.png")]


def test_file_names_that_are_not_utf8_are_skipped_with_a_notice(setup, tmp_path, capsys):
    import os

    folder = _two_x(tmp_path)
    bad_image = os.fsdecode(str(folder).encode() + b"/bad\xff.png")
    bad_video = os.fsdecode(str(folder).encode() + b"/clip\xff.mp4")  # OpenCV's reader segfaults on such a path
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(bad_image, format="PNG")
    with open(bad_video, "wb") as fh:
        fh.write(b"\0" * 64)
    csv_path = tmp_path / "rows.csv"
    assert main(["predict", str(folder), "--model", str(setup["ckpt"]), "--no-detect", "--json",
                 "--csv", str(csv_path)]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["path"] for line in out.strip().splitlines()] == [str(folder / "a" / "x.png"),
                                                                               str(folder / "b" / "x.png")]
    notices = [line for line in err.splitlines() if "not valid UTF-8" in line]
    assert len(notices) == 2 and all(n.startswith("ferlab: skipped ") for n in notices)
    assert len(list(csv.DictReader(csv_path.open()))) == 2


def test_an_unknown_detector_is_one_line_before_the_model_loads(setup, tmp_path, capsys):
    assert main(["predict", str(setup["crops"]), "--model", str(tmp_path / "no-such-model.pt"),
                 "--detector", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ferlab: error: unknown face detector 'bogus'")


def test_the_csv_carries_each_face_warning(setup, tmp_path, capsys):
    Image.fromarray(np.full((8, 8), 90, np.uint8)).save(tmp_path / "tiny.png")
    assert main(["predict", str(tmp_path / "tiny.png"), "--model", str(setup["ckpt"]), "--no-detect",
                 "--csv", str(tmp_path / "rows.csv")]) == 0
    (row,) = list(csv.DictReader((tmp_path / "rows.csv").open()))
    assert row["warning"] == "face is 8 px, under 20 px: unreliable" and row["error"] == ""


def test_export_outputs_must_differ_from_each_other_and_from_the_checkpoint(setup, tmp_path, capsys):
    import shutil

    ckpt = tmp_path / "best.pt"
    shutil.copy(setup["ckpt"], ckpt)
    before = ckpt.read_bytes()
    for argv, message in (
        (["--onnx", str(tmp_path / "x.onnx"), "--bundle", str(tmp_path / "x.onnx")],
         "--bundle and --onnx name the same"),
        (["--bundle", str(ckpt), "--half"], f"--bundle {ckpt} is the checkpoint being exported"),
        (["--bundle", str(tmp_path / "." / "best.pt")], "is the checkpoint being exported"),
    ):
        assert main(["export", str(ckpt), *argv]) == 2
        assert message in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--bundle", str(ckpt)]) == 2  # a run directory reads its best.pt
    assert "is the checkpoint being exported" in capsys.readouterr().err
    shutil.copy(setup["ckpt"], tmp_path / "last.pt")
    last = (tmp_path / "last.pt").read_bytes()
    assert main(["export", str(tmp_path), "--bundle", str(tmp_path / "last.pt")]) == 2  # resume needs last.pt
    assert "would replace the run's last.pt" in capsys.readouterr().err
    assert (tmp_path / "last.pt").read_bytes() == last
    assert ckpt.read_bytes() == before and not (tmp_path / "x.onnx").exists()


def test_no_output_may_overwrite_an_input(setup, tmp_path, capsys):
    folder = tmp_path / "f"
    folder.mkdir()
    for name, value in (("a.png", 60), ("a.annotated.png", 200)):
        Image.fromarray(np.full((48, 48), value, np.uint8)).save(folder / name)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    base = ["predict", "--model", str(setup["ckpt"]), "--no-detect"]
    assert main([*base, str(folder / "a.png"), "--csv", str(folder / "a.png")]) == 2
    assert "--csv" in capsys.readouterr().err
    assert main([*base, str(folder), "--out", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would overwrite the input" in err[0] and "a.annotated.png" in err[0]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert main([*base, str(folder / "a.png"), "--out", str(tmp_path / "elsewhere")]) == 0  # other folders are fine
