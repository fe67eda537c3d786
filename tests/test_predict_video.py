"""Video and webcam: annotated MP4 + per-frame CSV + plot, stable track ids, EMA smoothing, bad videos, no camera."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from ferlab.cli.main import main
from ferlab.errors import ConfigError
from ferlab.models import create_model
from ferlab.predict import Predictor
from ferlab.predict.detectors import Detection
from ferlab.predict.tracking import EmaSmoother, IoUTracker, smooth_sequence
from ferlab.predict.video import VideoConfig, process_video
from ferlab.predict.webcam import run_live
from ferlab.train.checkpoint import FORMAT, VERSION, save_checkpoint

CLASSES = ["angry", "happy", "sad"]
FRAMES, SIZE, FACE = 24, (320, 240), 110
SECOND_FROM = 12  # a second, still face joins from this frame on


def _face() -> np.ndarray:
    return cv2.resize(skimage.data.astronaut()[30:230, 130:330], (FACE, FACE), interpolation=cv2.INTER_AREA)


def _frame(k: int, face: np.ndarray) -> np.ndarray:
    """Frame k: one face moving right 4 px per frame, a second one at the right from SECOND_FROM on."""
    rgb = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
    x = 8 + 4 * k
    rgb[60:60 + FACE, x:x + FACE] = face
    if k >= SECOND_FROM:
        rgb[120:120 + FACE, 205:205 + FACE] = face
    return rgb


def _write_video(path: Path, frames: int = FRAMES) -> Path:
    face = _face()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, SIZE)
    assert writer.isOpened()
    for k in range(frames):
        writer.write(cv2.cvtColor(_frame(k, face), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("video")
    torch.manual_seed(0)
    model = create_model("simple_cnn", num_classes=len(CLASSES))
    ckpt = save_checkpoint(root / "m.pt", {"format": FORMAT, "version": VERSION, "model_name": "simple_cnn",
                                           "model_kwargs": {}, "classes": CLASSES, "image_size": 48,
                                           "config": {}, "epoch": 1, "metrics": {},
                                           "model_state": model.state_dict()})
    return {"root": root, "ckpt": ckpt, "video": _write_video(root / "clip.mp4")}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _tracks(rows: list[dict[str, str]]) -> dict[int, list[dict[str, str]]]:
    by_id: dict[int, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if r["track_id"]:
            by_id[int(r["track_id"])].append(r)
    return by_id


@pytest.mark.parametrize("detect_every", [1, 3])
def test_video_outputs_and_stable_track_ids(setup, tmp_path, capsys, detect_every):
    out = tmp_path / "out"
    assert main(["predict", str(setup["video"]), "--model", str(setup["ckpt"]), "--out", str(out), "--json",
                 "--detect-every", str(detect_every), "--csv", str(tmp_path / "faces.csv")]) == 0
    summary = json.loads(capsys.readouterr().out.strip())
    assert summary["error"] is None and summary["kind"] == "video"
    assert summary["frames"] == FRAMES and summary["fps"] == pytest.approx(10.0) and summary["size"] == list(SIZE)
    assert set(summary["outputs"]) == {"video", "csv", "plot"}

    cap = cv2.VideoCapture(str(out / "clip.annotated.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    decoded = []
    while (got := cap.read())[0]:
        decoded.append(got[1])
    cap.release()
    assert len(decoded) == FRAMES and decoded[0].shape == (SIZE[1], SIZE[0], 3)
    source = cv2.cvtColor(_frame(0, _face()), cv2.COLOR_RGB2BGR).astype(int)
    assert np.abs(decoded[0].astype(int) - source).mean() > 1.0  # the overlay was drawn

    rows = _rows(out / "clip.frames.csv")
    assert set(rows[0]) == {"frame", "time_s", "track_id", "x", "y", "w", "h", "label", *CLASSES}
    assert sorted({int(r["frame"]) for r in rows}) == list(range(FRAMES))
    tracks = _tracks(rows)
    moving = [tid for tid, rs in tracks.items() if int(rs[0]["frame"]) == 0]
    assert len(moving) == 1, tracks.keys()
    path = tracks[moving[0]]
    assert [int(r["frame"]) for r in path] == list(range(FRAMES))  # one id for the moving face, in every frame
    xs = [int(r["x"]) for r in path]
    assert 70 < xs[-1] - xs[0] < 110  # the box followed the face (4 px/frame x 23 frames = 92 px)
    others = [tid for tid in tracks if tid != moving[0]]
    assert len(others) == 1 and int(tracks[others[0]][0]["frame"]) >= SECOND_FROM
    assert len(tracks[others[0]]) >= FRAMES - SECOND_FROM - detect_every
    assert {t["id"] for t in summary["tracks"]} == set(tracks)
    assert all(t["dominant"] in CLASSES for t in summary["tracks"])
    assert all(abs(sum(float(r[c]) for c in CLASSES) - 1) < 2e-3 for r in rows if r["track_id"])

    with Image.open(out / "clip.emotions.png") as png:
        assert png.format == "PNG" and png.width > 300
    per_track = [r for r in _rows(tmp_path / "faces.csv") if r["path"] == str(setup["video"])]
    assert {int(r["face"]) for r in per_track} == set(tracks)
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_smoother_matches_the_ema_recurrence_exactly():
    rng = np.random.default_rng(0)
    raw = rng.dirichlet(np.ones(4), size=30)
    alpha = 0.25
    expected = [raw[0]]
    for p in raw[1:]:
        expected.append(alpha * p + (1 - alpha) * expected[-1])
    smoothed = smooth_sequence(raw, alpha)
    np.testing.assert_allclose(smoothed, np.stack(expected), rtol=0, atol=1e-12)
    np.testing.assert_allclose(smoothed.sum(axis=1), 1.0, atol=1e-12)
    for off in (0.0, 1.0):
        np.testing.assert_array_equal(smooth_sequence(raw, off), raw)

    flicker = np.array([[0.9, 0.1], [0.1, 0.9]] * 10)
    jumps = np.abs(np.diff(smooth_sequence(flicker, 0.3), axis=0)).sum(axis=1)
    raw_jumps = np.abs(np.diff(flicker, axis=0)).sum(axis=1)
    assert jumps.max() < 0.5 * raw_jumps.min()


def test_smoother_keeps_tracks_apart_and_forgets_dropped_ones():
    s = EmaSmoother(0.5)
    s.update(1, np.array([1.0, 0.0]))
    s.update(2, np.array([0.0, 1.0]))
    np.testing.assert_allclose(s.update(1, np.array([0.0, 1.0])), [0.5, 0.5])
    s.retain({2})
    np.testing.assert_allclose(s.update(1, np.array([0.0, 1.0])), [0.0, 1.0])  # fresh start after being forgotten
    np.testing.assert_allclose(s.update(2, np.array([1.0, 0.0])), [0.5, 0.5])
    with pytest.raises(ConfigError, match="between 0 and 1"):
        EmaSmoother(1.5)


def test_tracker_keeps_ids_through_motion_and_short_misses():
    def det(x: float, y: float = 10.0) -> Detection:
        return Detection(box=(x, y, 40.0, 40.0), score=1.0)

    tracker = IoUTracker(iou_threshold=0.3, max_missed=1)
    first = tracker.update([det(0), det(200)], frame=0)
    assert [tid for tid, _ in first] == [1, 2]
    moved = tracker.update([det(212), det(10)], frame=1)  # order of detections does not matter
    assert [(tid, d.box[0]) for tid, d in moved] == [(1, 10), (2, 212)]
    assert tracker.visible(3)[0][1].box[0] == pytest.approx(30)  # constant velocity between detections
    assert [tid for tid, _ in tracker.update([det(222)], frame=2)] == [2]  # face 1 missed: hidden, kept
    assert [tid for tid, _ in tracker.update([det(30), det(232)], frame=3)] == [1, 2]  # ...and found again
    tracker.update([det(242)], frame=4)
    tracker.update([det(252)], frame=5)  # face 1 missed twice > max_missed: dropped
    assert [tid for tid, _ in tracker.update([det(60), det(262)], frame=6)] == [3, 2]  # left to right: a new id


class _NoisyClassifier:
    """Probabilities from a hash of each crop: repeatable per crop, jumping from frame to frame."""

    classes = tuple(CLASSES)
    image_size = 48

    def predict_proba(self, images: np.ndarray, batch_size: int = 256, tta: str = "none") -> np.ndarray:
        return np.stack([np.random.default_rng(int(img.astype(np.int64).sum())).dirichlet(np.ones(3) * 0.5)
                         for img in images])


def test_smoothing_in_the_pipeline_equals_the_recurrence_and_damps_jumps(setup, tmp_path):
    predictor = Predictor(_NoisyClassifier())
    series = {}
    for alpha in (0.0, 0.3):
        result = process_video(predictor, setup["video"], tmp_path / str(alpha),
                               VideoConfig(smooth=alpha, progress=False))
        track = _tracks(_rows(Path(result.outputs["csv"])))[1]
        series[alpha] = np.array([[float(r[c]) for c in CLASSES] for r in track])
    raw, smoothed = series[0.0], series[0.3]
    assert len(raw) == FRAMES
    np.testing.assert_allclose(smoothed, smooth_sequence(raw, 0.3), atol=2e-4)  # CSV keeps 4 decimals
    raw_jump = np.abs(np.diff(raw, axis=0)).sum(axis=1).mean()
    smooth_jump = np.abs(np.diff(smoothed, axis=0)).sum(axis=1).mean()
    assert smooth_jump < 0.6 * raw_jump


def test_unreadable_videos_are_per_file_errors_and_the_batch_continues(setup, tmp_path, capsys):
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not really a video" * 20)
    (folder / "empty.avi").write_bytes(b"")
    (folder / "good.mp4").write_bytes(setup["video"].read_bytes())
    Image.fromarray(_frame(0, _face())).save(folder / "photo.png")
    assert main(["predict", str(folder), "--model", str(setup["ckpt"]), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    by_name = {Path(d["path"]).name: d for d in lines}
    assert [Path(d["path"]).name for d in lines] == ["broken.mp4", "empty.avi", "good.mp4", "photo.png"]
    assert "cannot open video" in by_name["broken.mp4"]["error"]
    assert "empty file" in by_name["empty.avi"]["error"]
    assert set(by_name["broken.mp4"]) == set(by_name["good.mp4"])  # a failed video's line has every field too
    assert by_name["good.mp4"]["error"] is None and by_name["good.mp4"]["frames"] == FRAMES
    assert by_name["photo.png"]["error"] is None and len(by_name["photo.png"]["faces"]) == 1

    assert main(["predict", str(folder / "broken.mp4"), str(folder / "missing.mkv"),
                 "--model", str(setup["ckpt"])]) == 1
    captured = capsys.readouterr()
    assert "broken.mp4: " in captured.out and "missing.mkv: no such file" in captured.out
    assert captured.err.strip() == "ferlab: error: no input could be processed"


@pytest.mark.parametrize("flags, message", [(["--smooth", "1.5"], "--smooth"), (["--detect-every", "0"],
                                                                                  "--detect-every")])
def test_bad_video_flags_are_one_line_errors(setup, capsys, flags, message):
    assert main(["predict", str(setup["video"]), "--model", str(setup["ckpt"]), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ferlab: error: {message}") and "\n" not in err


def test_help_defaults_match_the_config(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    cfg = VideoConfig()
    assert f"0 or 1 = off (default: {cfg.smooth})" in text and f"in between (default: {cfg.detect_every})" in text


def test_webcam_without_display_or_camera_exits_2_with_one_line(setup, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["webcam", "--model", str(setup["ckpt"])]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ferlab: error: ") and "\n" not in err and ("display" in err or "GUI" in err)

    monkeypatch.setattr("ferlab.predict.webcam.check_display", lambda: None)  # pretend a desktop session
    assert main(["webcam", "--device", str(setup["root"] / "no-such-camera"), "--model", str(setup["ckpt"])]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ferlab: error: cannot open camera") and "\n" not in err


class _FakeSource:
    def __init__(self, n: int) -> None:
        self.frames = [_frame(k, _face()) for k in range(n)]
        self.closed = False

    def read(self) -> np.ndarray | None:
        return self.frames.pop(0) if self.frames else None

    def close(self) -> None:
        self.closed = True


class _FakeSink:
    def __init__(self, quit_after: int) -> None:
        self.shown: list[np.ndarray] = []
        self.quit_after, self.closed = quit_after, False

    def show(self, rgb: np.ndarray) -> bool:
        self.shown.append(rgb)
        return len(self.shown) < self.quit_after  # the user presses q on frame `quit_after`

    def close(self) -> None:
        self.closed = True


def test_live_loop_draws_tracked_faces_and_stops_on_quit(setup):
    predictor = Predictor.from_checkpoint(setup["ckpt"])
    source, sink = _FakeSource(8), _FakeSink(quit_after=5)
    assert run_live(predictor, source, sink, VideoConfig(batch_frames=1, progress=False)) == 5
    assert source.closed and sink.closed and len(source.frames) == 3
    box_colour = np.all(sink.shown[-1] == (255, 200, 0), axis=-1)
    assert box_colour.sum() > 100  # boxes and bars drawn on the face
    source, sink = _FakeSource(3), _FakeSink(quit_after=99)
    assert run_live(predictor, source, sink) == 3 and sink.closed  # the source ending stops the loop too
