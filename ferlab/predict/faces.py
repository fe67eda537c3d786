"""Find faces and turn each into a FER2013-like crop: eye line levelled, square with margin, grayscale, size x size."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ferlab.predict.detectors import Detection, DetectorConfig, FaceDetector, get_detector, list_detectors
from ferlab.predict.images import as_rgb, load_image

__all__ = ["AlignedFace", "align_face", "crop_landmarks", "detect_and_align", "list_detectors", "load_image",
           "to_gray"]

#: Work at most at this multiple of the output size before the final area-averaging resize (anti-aliasing).
_OVERSAMPLE = 4


@dataclass(frozen=True)
class AlignedFace:
    """A face ready for a classifier: `crop` uint8 size x size, `box` (x, y, w, h) in source pixels."""

    crop: np.ndarray
    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray | None = None
    too_small: bool = False
    warning: str | None = None
    crop_landmarks: np.ndarray | None = None  # `landmarks` in crop pixels (where explanations put the regions)


def to_gray(image: np.ndarray) -> np.ndarray:
    """RGB(A) or gray uint8 -> gray uint8 H x W."""
    import cv2

    if image.ndim == 2:
        return image
    return cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_RGB2GRAY)


def _eye_angle(landmarks: np.ndarray | None) -> float:
    """Angle (degrees) of the line from the left to the right eye; 0 when there are no landmarks."""
    if landmarks is None:
        return 0.0
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def _face_centre(det: Detection, y_shift: float) -> tuple[float, float]:
    """Midpoint of the eyes and mouth corners when landmarks exist (FER2013 crops centre near the nose)."""
    if det.landmarks is not None:
        cx, cy = det.landmarks[[0, 1, 3, 4]].mean(axis=0)
        return float(cx), float(cy)
    x, y, w, h = det.box
    return x + w / 2, y + h / 2 + y_shift * h


#: OpenCV's warpAffine refuses sources with a side of SHRT_MAX (32,767) pixels or more.
_WARP_MAX_SIDE = 32_766


def _alignment(det: Detection, size: int, margin: float, box_scale: float,
               y_shift: float) -> tuple[np.ndarray, int]:
    """The affine map from source pixels to a `work` x `work` patch (eyes level, the square face box filling it)."""
    import cv2

    _, _, w, h = det.box
    cx, cy = _face_centre(det, y_shift)
    side = max(w, h) * box_scale * (1.0 + margin)
    work = int(min(max(side, size), size * _OVERSAMPLE))
    matrix = cv2.getRotationMatrix2D((cx, cy), _eye_angle(det.landmarks), work / side)
    matrix[:, 2] += (work / 2 - cx, work / 2 - cy)
    return matrix, work


def align_face(gray: np.ndarray, det: Detection, *, size: int = 48, margin: float = 0.2,
               box_scale: float = 1.0, y_shift: float = 0.0) -> np.ndarray:
    """Rotate about the face centre so the eyes are level, cut a square of side max(w, h) * box_scale * (1 + margin).

    `box_scale` and `y_shift` (fraction of the box height) map a detector's box to the common face box
    (brows to chin); with the default margin the crop frames the face as tightly as FER2013 does.
    """
    import cv2

    matrix, work = _alignment(det, size, margin, box_scale, y_shift)
    if max(gray.shape[:2]) > _WARP_MAX_SIDE:  # shrink first (exactly compensated in the map): the crop is tiny anyway
        shrink = _WARP_MAX_SIDE / max(gray.shape[:2])
        gray = cv2.resize(gray, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        matrix = matrix.copy()
        matrix[:, :2] /= shrink
    patch = cv2.warpAffine(gray, matrix, (work, work), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if work != size:
        patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return patch


def crop_landmarks(det: Detection, *, size: int = 48, margin: float = 0.2, box_scale: float = 1.0,
                   y_shift: float = 0.0) -> np.ndarray | None:
    """The detection's landmarks in the pixels of its `align_face` crop (same map), or None without landmarks.

    Explanations place the facial regions on these, so they must follow the exact transform of the crop.
    """
    if det.landmarks is None:
        return None
    matrix, work = _alignment(det, size, margin, box_scale, y_shift)
    points = np.c_[np.asarray(det.landmarks, dtype=np.float64), np.ones(len(det.landmarks))] @ matrix.T
    return (points + 0.5) * (size / work) - 0.5  # pixel centres through the final area resize


def detect_and_align(image: np.ndarray, *, detector: str | FaceDetector = "auto", size: int = 48,
                     margin: float = 0.2, min_size: int = 20,
                     detector_config: DetectorConfig | None = None) -> list[AlignedFace]:
    """Detect every face in an RGB or gray image and align it; faces under `min_size` px are kept and flagged.

    Faces come left to right. An empty list means no face was found. `detector_config` sets up a detector given
    by name (working resolution, min_face, precision, threads).
    """
    rgb = as_rgb(image)
    gray = to_gray(rgb)
    det_impl = get_detector(detector, detector_config) if isinstance(detector, str) else detector
    whole = getattr(det_impl, "name", "") == "none"  # a face crop: prepared as training saw dataset images
    faces = []
    for det in sorted(det_impl.detect(rgb), key=lambda d: (d.box[0], d.box[1])):
        box = tuple(int(round(v)) for v in det.box)
        small = min(box[2], box[3]) < min_size
        warning = f"face is {min(box[2], box[3])} px, under {min_size} px: unreliable" if small else None
        geometry = {"size": size, "margin": margin, "box_scale": det_impl.box_scale, "y_shift": det_impl.y_shift}
        crop = whole_face(rgb, size) if whole else align_face(gray, det, **geometry)
        faces.append(AlignedFace(crop=crop, box=box, score=det.score, landmarks=det.landmarks, too_small=small,
                                 warning=warning, crop_landmarks=None if whole else crop_landmarks(det, **geometry)))
    return faces


def whole_face(rgb: np.ndarray, size: int) -> np.ndarray:
    """A whole image taken as one face crop -> `size` x `size` gray by the data resize policy (centre square, box
    filter down, bicubic up), so `--no-detect` sees a crop file exactly as `ferlab eval` and training do."""
    from PIL import Image

    from ferlab.data.decode import to_square_gray

    return to_square_gray(Image.fromarray(rgb), size)
