"""Annotated images: a box per face with its label, and a probability bar per class beside it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["annotate"]

_BOX = (255, 200, 0)


def annotate(image_rgb: np.ndarray, faces: Sequence) -> np.ndarray:  # faces: FacePrediction-like (box, label, probs)
    """A copy of `image_rgb` (H x W x 3 uint8) with each face's box, label and probability bars drawn on it."""
    import cv2

    out = np.ascontiguousarray(image_rgb.copy())
    scale = max(out.shape[:2]) / 640
    thick, font = max(1, round(2 * scale)), 0.45 * max(scale, 0.6)
    for face in faces:
        x, y, w, h = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x, y), (x + w, y + h), _BOX, thick)
        title = f"{face.label} {face.probs[face.label]:.0%}"
        cv2.putText(out, title, (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, font * 1.2, _BOX, thick, cv2.LINE_AA)
        bar_x, line = x + w + 6, max(int(14 * max(scale, 0.6)), 10)
        if bar_x + 120 * scale > out.shape[1]:  # no room on the right: draw the bars inside the box
            bar_x = x + 4
        for k, (name, p) in enumerate(sorted(face.probs.items(), key=lambda kv: -kv[1])):
            top = y + k * line
            length = int(round(p * 80 * max(scale, 0.6)))
            cv2.rectangle(out, (bar_x, top + 2), (bar_x + length, top + line - 2), _BOX, -1)
            cv2.putText(out, f"{name} {p:.2f}", (bar_x + length + 4, top + line - 3), cv2.FONT_HERSHEY_SIMPLEX,
                        font * 0.8, (255, 255, 255), 1, cv2.LINE_AA)
    return out
