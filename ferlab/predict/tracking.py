"""Faces across video frames: IoU matching to stable track ids, and per-track exponential smoothing of probabilities."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ferlab.errors import ConfigError
from ferlab.predict.detectors import Detection

__all__ = ["iou", "Track", "IoUTracker", "EmaSmoother", "smooth_sequence"]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes; 0 when either is empty."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class Track:
    """One face followed over frames: its last detection, when it was seen, and its motion per frame."""

    id: int
    detection: Detection
    frame: int
    velocity: tuple[float, float] = (0.0, 0.0)  # box shift in px per frame, from the last two detections
    missed: int = 0  # detection rounds in a row without a match

    def at(self, frame: int) -> Detection:
        """The detection moved to `frame` at constant velocity (box and landmarks), for frames between detections."""
        steps = frame - self.frame
        if steps == 0 or self.velocity == (0.0, 0.0):
            return self.detection
        dx, dy = self.velocity[0] * steps, self.velocity[1] * steps
        x, y, w, h = self.detection.box
        marks = self.detection.landmarks
        return replace(self.detection, box=(x + dx, y + dy, w, h),
                       landmarks=None if marks is None else (marks + np.array([dx, dy], np.float32)))


class IoUTracker:
    """Greedy IoU matching of each round of detections to the tracks' predicted boxes; new faces get new ids.

    A track missed by a detection round is hidden at once but kept `max_missed` rounds, so a face that the
    detector drops for a frame or two comes back under the same id.
    """

    def __init__(self, *, iou_threshold: float = 0.3, max_missed: int = 5) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ConfigError(f"IoU threshold must be in (0, 1], got {iou_threshold}")
        self.iou_threshold, self.max_missed = iou_threshold, max_missed
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, detections: Iterable[Detection], frame: int) -> list[tuple[int, Detection]]:
        """Match this frame's detections; returns the visible (track id, detection) pairs, left to right."""
        dets = list(detections)
        predicted = [t.at(frame).box for t in self.tracks]
        pairs = sorted(((iou(p, d.box), ti, di) for ti, p in enumerate(predicted) for di, d in enumerate(dets)),
                       key=lambda s: (-s[0], s[1], s[2]))
        used_tracks: set[int] = set()
        used_dets: set[int] = set()
        for score, ti, di in pairs:
            if score < self.iou_threshold:
                break
            if ti in used_tracks or di in used_dets:
                continue
            used_tracks.add(ti)
            used_dets.add(di)
            track, det = self.tracks[ti], dets[di]
            steps = max(1, frame - track.frame)
            track.velocity = ((det.box[0] - track.detection.box[0]) / steps,
                              (det.box[1] - track.detection.box[1]) / steps)
            track.detection, track.frame, track.missed = det, frame, 0
        kept = []
        for ti, track in enumerate(self.tracks):
            if ti not in used_tracks:
                track.missed += 1
            if track.missed <= self.max_missed:
                kept.append(track)
        for di, det in enumerate(dets):
            if di not in used_dets:
                kept.append(Track(id=self._next_id, detection=det, frame=frame))
                self._next_id += 1
        self.tracks = kept
        return self.visible(frame)

    def visible(self, frame: int) -> list[tuple[int, Detection]]:
        """Tracks matched by the latest detection round, moved to `frame`, left to right."""
        out = [(t.id, t.at(frame)) for t in self.tracks if t.missed == 0]
        return sorted(out, key=lambda item: (item[1].box[0], item[1].box[1]))

    @property
    def alive_ids(self) -> set[int]:
        """Ids still kept (visible or waiting to be re-found)."""
        return {t.id for t in self.tracks}


class EmaSmoother:
    """Exponential moving average per key: s = alpha * p + (1 - alpha) * s_prev; alpha 0 or 1 switches it off.

    `alpha` is the weight of the newest frame: 0.3 follows a change within a few frames and damps flicker.
    """

    def __init__(self, alpha: float) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"smoothing alpha must be between 0 and 1 (0 or 1 = off), got {alpha}")
        self.alpha = float(alpha)
        self._state: dict[Hashable, np.ndarray] = {}

    @property
    def enabled(self) -> bool:
        return 0.0 < self.alpha < 1.0

    def update(self, key: Hashable, probs: np.ndarray) -> np.ndarray:
        """The smoothed probabilities for `key` after observing `probs` (the first observation passes through)."""
        p = np.asarray(probs, dtype=np.float64)
        prev = self._state.get(key)
        out = p if prev is None or not self.enabled else self.alpha * p + (1.0 - self.alpha) * prev
        self._state[key] = out
        return out

    def retain(self, keys: Iterable[Hashable]) -> None:
        """Forget every key not in `keys` (tracks that are gone)."""
        keep = set(keys)
        for key in [k for k in self._state if k not in keep]:
            del self._state[key]


def smooth_sequence(probs: np.ndarray, alpha: float) -> np.ndarray:
    """Smooth a T x C sequence of probabilities of one track (what the video pipeline does frame by frame)."""
    smoother = EmaSmoother(alpha)
    return np.stack([smoother.update(0, p) for p in np.asarray(probs)]) if len(probs) else np.asarray(probs)
