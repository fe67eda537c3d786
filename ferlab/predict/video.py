"""Video files: detect (downscaled, every N frames), track, classify, smooth; annotated MP4, per-frame CSV, plot."""

from __future__ import annotations

import csv
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ferlab.errors import ConfigError, DataError, SourceNotFoundError
from ferlab.predict.detectors import Detection, DetectorConfig, FaceDetector, _downscale, get_detector
from ferlab.predict.faces import align_face, to_gray
from ferlab.predict.tracking import EmaSmoother, IoUTracker

__all__ = [
    "VIDEO_SUFFIXES",
    "VideoConfig",
    "TrackedFace",
    "TrackSummary",
    "VideoResult",
    "VideoAnalyzer",
    "is_video_path",
    "open_video",
    "draw_tracked",
    "emotions_png",
    "process_video",
]

#: File suffixes `ferlab predict` treats as videos.
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})

_BOX = (255, 200, 0)  # the colour of ferlab.predict.draw


@dataclass(frozen=True)
class VideoConfig:
    """Knobs of the video/webcam pipeline; the defaults keep a 640x480 stream real-time on a small CPU."""

    detect_every: int = 3  # run the detector on every N-th frame; tracks carry the boxes in between
    detect_max_side: int = 320  # the detector sees a copy of the frame downscaled to this longest side
    smooth: float = 0.3  # EMA weight of the newest frame's probabilities; 0 or 1 = no smoothing
    iou_threshold: float = 0.3  # minimum IoU to keep a face's track id across detections
    max_missed: int = 5  # detection rounds a lost face keeps its id (it is hidden meanwhile)
    batch_frames: int = 8  # frames whose faces are classified in one batch (files only; live uses 1)
    plot: str = "main"  # "main": the track seen longest; "mean": mean over the visible tracks per frame
    fourcc: str = "mp4v"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise ConfigError(f"--detect-every must be >= 1, got {self.detect_every}")
        if self.detect_max_side < 32:
            raise ConfigError(f"detect_max_side must be >= 32 px, got {self.detect_max_side}")
        if not 0.0 <= self.smooth <= 1.0:
            raise ConfigError(f"--smooth must be between 0 and 1 (0 or 1 = off), got {self.smooth}")
        if self.batch_frames < 1:
            raise ConfigError(f"batch_frames must be >= 1, got {self.batch_frames}")
        if self.plot not in ("main", "mean"):
            raise ConfigError(f"plot must be 'main' or 'mean', got '{self.plot}'")
        if len(self.fourcc) != 4:
            raise ConfigError(f"fourcc must be 4 characters, got '{self.fourcc}'")


@dataclass(frozen=True)
class TrackedFace:
    """One face in one frame: `probs` are smoothed (what is shown and written), `raw` the frame's own output."""

    track_id: int
    box: tuple[int, int, int, int]
    score: float
    label: str
    probs: dict[str, float]
    raw: np.ndarray
    warning: str | None = None


def is_video_path(path: str | os.PathLike) -> bool:
    """True when the file name ends in one of VIDEO_SUFFIXES (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


class VideoAnalyzer:
    """Frames in order -> tracked, classified, smoothed faces; keeps the tracker and smoother state between calls."""

    def __init__(self, predictor: Any, config: VideoConfig | None = None, *, detect: bool = True) -> None:
        self.predictor = predictor
        self.config = config or VideoConfig()
        name = predictor.detector if detect else "none"
        if isinstance(name, str):  # a detector set up to work at most at detect_max_side (it downscales itself)
            base = getattr(predictor, "detector_config", None) or DetectorConfig()
            cfg = replace(base, max_side=min(base.max_side, self.config.detect_max_side))
            self.detector: FaceDetector = get_detector(name, cfg)
        else:
            self.detector = name
        # Instances and option-less detectors do not know detect_max_side: downscale the frames for them.
        self._prescale = not isinstance(name, str) or getattr(self.detector, "config", None) is None
        self.tracker = IoUTracker(iou_threshold=self.config.iou_threshold, max_missed=self.config.max_missed)
        self.smoother = EmaSmoother(self.config.smooth)
        self.margin = predictor.margin if detect and self.detector.name != "none" else 0.0
        self.frame_index = 0

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.predictor.classes)

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        if not self._prescale:
            return self.detector.detect(rgb)
        small, factor = _downscale(rgb, self.config.detect_max_side)
        dets = self.detector.detect(small)
        if factor == 1.0:
            return dets
        return [Detection(box=tuple(v / factor for v in d.box), score=d.score,
                          landmarks=None if d.landmarks is None else d.landmarks / factor) for d in dets]

    def process(self, frames: Sequence[np.ndarray]) -> list[list[TrackedFace]]:
        """Faces of each RGB frame, left to right; the crops of all frames are classified in one batch."""
        size = self.predictor.classifier.image_size
        crops: list[np.ndarray] = []
        slots: list[list[tuple[int, Detection]]] = []
        for rgb in frames:
            index = self.frame_index
            self.frame_index += 1
            if index % self.config.detect_every == 0:
                visible = self.tracker.update(self._detect(rgb), index)
            else:
                visible = self.tracker.visible(index)
            if visible:
                gray = to_gray(rgb)
                crops.extend(align_face(gray, det, size=size, margin=self.margin, box_scale=self.detector.box_scale,
                                        y_shift=self.detector.y_shift) for _, det in visible)
            slots.append(visible)
        probs = self.predictor.classify_faces(np.stack(crops)) if crops else np.zeros((0, len(self.classes)))
        out: list[list[TrackedFace]] = []
        at = 0
        for visible in slots:
            faces = []
            for track_id, det in visible:
                raw = np.asarray(probs[at], dtype=np.float64)
                at += 1
                smooth = self.smoother.update(track_id, raw)
                box = tuple(int(round(v)) for v in det.box)
                side = min(box[2], box[3])
                warning = (f"face is {side} px, below --min-size {self.predictor.min_size}: unreliable"
                           if side < self.predictor.min_size else None)
                faces.append(TrackedFace(track_id=track_id, box=box, score=float(det.score),
                                         label=self.classes[int(np.argmax(smooth))],
                                         probs={c: float(v) for c, v in zip(self.classes, smooth, strict=True)},
                                         raw=raw, warning=warning))
            out.append(faces)
        self.smoother.retain(self.tracker.alive_ids)
        return out


def draw_tracked(rgb: np.ndarray, faces: Sequence[TrackedFace]) -> np.ndarray:
    """The predict overlay (box, label, probability bars) plus each face's track id under its box."""
    import cv2

    from ferlab.predict.draw import annotate

    out = annotate(rgb, faces)
    scale = max(out.shape[:2]) / 640
    for face in faces:
        x, y, w, h = face.box
        cv2.putText(out, f"#{face.track_id}", (x, min(y + h + int(16 * max(scale, 0.6)), out.shape[0] - 3)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5 * max(scale, 0.6), _BOX, max(1, round(scale)), cv2.LINE_AA)
    return out


def open_video(path: str | os.PathLike) -> Any:
    """An opened cv2.VideoCapture; missing file -> SourceNotFoundError, unreadable -> DataError (one line)."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise SourceNotFoundError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: empty file (0 bytes)")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise DataError(f"{p}: cannot open video (not a format OpenCV/FFmpeg can decode)")
    return cap


def _frames(cap: Any) -> Iterator[np.ndarray]:
    import cv2

    while True:
        ok, bgr = cap.read()
        if not ok or bgr is None:
            return
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def emotions_png(times: np.ndarray, series: np.ndarray, classes: Sequence[str], title: str) -> bytes:
    """Line plot of T x C probabilities over time (NaN = no face in that frame) as PNG bytes."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for k, name in enumerate(classes):
        ax.plot(times, series[:, k], label=name, linewidth=1.4)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    if len(times):
        ax.set_xlim(float(times[0]), float(max(times[-1], times[0] + 1e-3)))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


@dataclass(frozen=True)
class TrackSummary:
    """A track over the whole video: frames seen, first/last time, dominant emotion (argmax of its mean probs)."""

    id: int
    frames: int
    first_s: float
    last_s: float
    dominant: str
    mean_probs: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "frames": self.frames, "first_s": round(self.first_s, 3),
                "last_s": round(self.last_s, 3), "dominant": self.dominant,
                "mean_probs": {k: round(v, 4) for k, v in self.mean_probs.items()}}


@dataclass(frozen=True)
class VideoResult:
    """What `process_video` did: `ferlab predict --json` prints `to_dict()` for a video input."""

    path: str
    frames: int
    fps: float
    width: int
    height: int
    tracks: list[TrackSummary]
    outputs: dict[str, str] | None = None
    processing_fps: float = 0.0

    @staticmethod
    def failed(path: str, error: str) -> dict[str, Any]:
        """The `to_dict()` record of a video that could not be read: every key present, nothing measured."""
        return {"path": path, "kind": "video", "frames": 0, "fps": None, "duration_s": None, "size": None,
                "tracks": [], "outputs": None, "processing_fps": None, "error": error}

    def to_dict(self, error: str | None = None) -> dict[str, Any]:
        return {"path": self.path, "kind": "video", "frames": self.frames, "fps": round(self.fps, 3),
                "duration_s": round(self.frames / self.fps, 3) if self.fps else None,
                "size": [self.width, self.height], "tracks": [t.to_dict() for t in self.tracks],
                "outputs": self.outputs, "processing_fps": round(self.processing_fps, 1), "error": error}


@contextmanager
def _video_file(target: Path) -> Iterator[Path]:
    """Like ferlab.io.atomic_path, but the temporary name keeps the container suffix OpenCV picks the muxer by."""
    from ferlab.io import atomic_path

    with atomic_path(target) as tmp:
        work = tmp.with_name(tmp.name + target.suffix)
        try:
            yield work
            os.replace(work, tmp)
        finally:
            work.unlink(missing_ok=True)


class _Outputs:
    """The three output files of one video, written as frames arrive and published together at the end."""

    def __init__(self, stack: ExitStack, out_dir: Path, stem: str, classes: Sequence[str], fps: float,
                 fourcc: str) -> None:
        from ferlab.io import atomic_open

        self.paths = {"video": out_dir / f"{stem}.annotated.mp4", "csv": out_dir / f"{stem}.frames.csv",
                      "plot": out_dir / f"{stem}.emotions.png"}
        self._video_tmp = stack.enter_context(_video_file(self.paths["video"]))
        self._csv = csv.writer(stack.enter_context(atomic_open(self.paths["csv"], "w", newline="", encoding="utf-8")))
        self._csv.writerow(["frame", "time_s", "track_id", "x", "y", "w", "h", "label", *classes])
        self._writer: Any = None
        self._fps, self._fourcc, self._stack = fps, fourcc, stack
        self._classes = classes

    def write(self, index: int, time_s: float, rgb: np.ndarray, faces: Sequence[TrackedFace]) -> None:
        import cv2

        if self._writer is None:
            h, w = rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self._video_tmp), cv2.VideoWriter_fourcc(*self._fourcc), self._fps,
                                           (w, h))
            self._stack.callback(self._writer.release)  # released before the file is moved into place
            if not self._writer.isOpened():
                raise DataError(f"{self.paths['video']}: OpenCV cannot write '{self._fourcc}' video here")
        self._writer.write(cv2.cvtColor(draw_tracked(rgb, faces), cv2.COLOR_RGB2BGR))
        if not faces:
            self._csv.writerow([index, f"{time_s:.3f}", "", "", "", "", "", "", *[""] * len(self._classes)])
        for f in faces:
            self._csv.writerow([index, f"{time_s:.3f}", f.track_id, *f.box, f.label,
                                *(f"{f.probs[c]:.4f}" for c in self._classes)])


def _plot_series(records: list[tuple[int, int, np.ndarray]], n_frames: int, n_classes: int, mode: str,
                 main_id: int | None) -> np.ndarray:
    series = np.full((n_frames, n_classes), np.nan)
    if mode == "main":
        for frame, track_id, probs in records:
            if track_id == main_id:
                series[frame] = probs
        return series
    sums, counts = np.zeros((n_frames, n_classes)), np.zeros(n_frames)
    for frame, _, probs in records:
        sums[frame] += probs
        counts[frame] += 1
    seen = counts > 0
    series[seen] = sums[seen] / counts[seen, None]
    return series


def process_video(predictor: Any, path: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                  config: VideoConfig | None = None, *, detect: bool = True, stem: str | None = None) -> VideoResult:
    """Analyse every frame of a video; with `out_dir`, write <stem>.annotated.mp4, .frames.csv and .emotions.png
    (`stem`: the video's file stem unless given, e.g. to keep two inputs named alike apart).

    Unreadable input raises a DataError before anything is written; outputs appear only once complete.
    """
    import cv2
    from tqdm import tqdm

    from ferlab.io import atomic_write_bytes

    cfg = config or VideoConfig()
    cap = open_video(path)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        fps = fps if np.isfinite(fps) and 0.0 < fps < 1000.0 else 30.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None
        analyzer = VideoAnalyzer(predictor, cfg, detect=detect)
        classes = analyzer.classes
        records: list[tuple[int, int, np.ndarray]] = []  # (frame, track id, smoothed probs) for the plot
        sums: dict[int, np.ndarray] = {}
        seen: dict[int, list[int]] = {}  # track id -> [frames, first frame, last frame]
        width = height = n = 0
        start = time.perf_counter()
        with ExitStack() as stack:
            outputs = (_Outputs(stack, Path(out_dir), stem or Path(path).stem, classes, fps, cfg.fourcc)
                       if out_dir is not None else None)
            bar = stack.enter_context(tqdm(total=total, desc=Path(path).name, unit="frame", file=sys.stderr,
                                           leave=False, disable=None if cfg.progress else True))
            frames = _frames(cap)
            while True:
                batch = [f for _, f in zip(range(cfg.batch_frames), frames, strict=False)]
                if not batch:
                    break
                height, width = batch[0].shape[:2]
                for rgb, faces in zip(batch, analyzer.process(batch), strict=True):
                    for f in faces:
                        records.append((n, f.track_id, np.array([f.probs[c] for c in classes])))
                        sums[f.track_id] = sums.get(f.track_id, 0.0) + f.raw
                        stats = seen.setdefault(f.track_id, [0, n, n])
                        stats[0] += 1
                        stats[2] = n
                    if outputs is not None:
                        outputs.write(n, n / fps, rgb, faces)
                    n += 1
                bar.update(len(batch))
            if n == 0:
                raise DataError(f"{path}: no frame could be decoded")
            elapsed = time.perf_counter() - start
            tracks = []
            for track_id in sorted(seen):
                count, first, last = seen[track_id]
                mean = sums[track_id] / count
                tracks.append(TrackSummary(id=track_id, frames=count, first_s=first / fps, last_s=last / fps,
                                           dominant=classes[int(np.argmax(mean))],
                                           mean_probs={c: float(v) for c, v in zip(classes, mean, strict=True)}))
            if outputs is not None:
                main = max(tracks, key=lambda t: (t.frames, -t.id)) if tracks else None
                series = _plot_series(records, n, len(classes), cfg.plot, main.id if main else None)
                what = (f"track #{main.id}" if main else "no face") if cfg.plot == "main" else "mean over tracks"
                png = emotions_png(np.arange(n) / fps, series, classes, f"{Path(path).name}: {what}")
                atomic_write_bytes(outputs.paths["plot"], png)
    finally:
        cap.release()
    return VideoResult(path=str(path), frames=n, fps=fps, width=width, height=height, tracks=tracks,
                       outputs={k: str(v) for k, v in outputs.paths.items()} if outputs is not None else None,
                       processing_fps=n / elapsed if elapsed > 0 else 0.0)
