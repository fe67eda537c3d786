"""Facial-region label maps (brows, eyes, nose, mouth, jaw/cheeks) and each region's share of an attribution map.

Regions are ellipses laid out in a face frame defined by five landmarks (eye centres, nose tip, mouth
corners): from the detector's landmarks when a photo face has them, otherwise from the template of mean
landmark positions calibrated on aligned 48x48 FER2013 faces (`ferlab/assets/regions_template.json`,
produced by `python -m ferlab.explain.calibrate_regions`; see docs/regions.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from ferlab.errors import ConfigError

__all__ = [
    "REGIONS",
    "OTHER",
    "LABELS",
    "RegionTemplate",
    "load_template",
    "template_landmarks",
    "region_label_map",
    "region_areas",
    "region_shares",
    "region_shares_per_area",
]

#: Facial regions, in label-map order (label id = index + 1); 0 is OTHER.
REGIONS: tuple[str, ...] = ("brows", "eyes", "nose", "mouth", "jaw_cheeks")
#: Everything outside the five regions: forehead, temples, hair, background.
OTHER = "other"
#: Names of the label-map ids: LABELS[id].
LABELS: tuple[str, ...] = (OTHER, *REGIONS)

_TEMPLATE_FILE = "regions_template.json"

# Region shapes in units of the inter-ocular distance (iod), in the face frame (u along the eye line,
# v perpendicular, pointing to the chin). Positions come from the landmarks; these are the sizes.
_EYE_AXES = (0.30, 0.18)
BROW_AXES_IOD = (0.38, 0.15)  # public: the calibration script places the brow centre with it
_MOUTH_PAD_U, _MOUTH_V = 0.18, 0.28
_NOSE_HALF_WIDTH = 0.24
_FACE_HALF_WIDTH = 1.0
_FACE_TOP_PAD, _FACE_BOTTOM_PAD = 0.25, 0.8


@dataclass(frozen=True)
class RegionTemplate:
    """Mean landmark positions on aligned faces of side `size` (x, y pixel-centre coordinates)."""

    size: int
    landmarks: tuple[tuple[float, float], ...]  # left eye, right eye, nose tip, left mouth, right mouth
    brow_offset_iod: float  # brow line above the eye line, in inter-ocular distances
    meta: dict


@lru_cache(maxsize=1)
def load_template() -> RegionTemplate:
    """The calibrated template bundled in ferlab/assets (read once)."""
    text = resources.files("ferlab").joinpath("assets", _TEMPLATE_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    return RegionTemplate(
        size=int(data["size"]),
        landmarks=tuple((float(x), float(y)) for x, y in data["landmarks"]),
        brow_offset_iod=float(data["brow_offset_iod"]),
        meta={k: v for k, v in data.items() if k not in {"size", "landmarks", "brow_offset_iod"}},
    )


def template_landmarks(size: int = 48, template: RegionTemplate | None = None) -> np.ndarray:
    """Template landmarks (5 x 2) scaled to a face of side `size`."""
    tpl = template or load_template()
    scale = size / tpl.size
    pts = np.asarray(tpl.landmarks, dtype=np.float64)
    return (pts + 0.5) * scale - 0.5


def _inside_ellipse(u: np.ndarray, v: np.ndarray, cu: float, cv: float, au: float, av: float) -> np.ndarray:
    return ((u - cu) / au) ** 2 + ((v - cv) / av) ** 2 <= 1.0


def region_label_map(
    size: int = 48, landmarks: np.ndarray | None = None, *, template: RegionTemplate | None = None
) -> np.ndarray:
    """Label map (int8 size x size, ids index LABELS) from 5 landmarks (x, y) or the calibrated template.

    Regions never overlap: each pixel gets the first region that claims it in the order
    eyes, brows, mouth, nose, jaw_cheeks; unclaimed pixels are OTHER (0).
    """
    tpl = template or load_template()
    pts = template_landmarks(size, tpl) if landmarks is None else np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (5, 2) or not np.isfinite(pts).all():
        raise ConfigError(f"landmarks must be 5 finite (x, y) points, got shape {pts.shape}")
    left_eye, right_eye, nose, mouth_l, mouth_r = pts
    axis = right_eye - left_eye
    iod = float(np.hypot(*axis))
    if iod < 1e-6:
        raise ConfigError("landmarks: the two eyes coincide")
    ex, ey = axis / iod  # unit vector along the eye line; (-ey, ex) points down the face
    origin = (left_eye + right_eye) / 2

    def frame(p: np.ndarray) -> tuple[float, float]:
        d = p - origin
        return float(d[0] * ex + d[1] * ey) / iod, float(-d[0] * ey + d[1] * ex) / iod

    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xs - origin[0], ys - origin[1]
    u, v = (dx * ex + dy * ey) / iod, (-dx * ey + dy * ex) / iod

    (lu, lv), (ru, rv), (nu, nv) = frame(left_eye), frame(right_eye), frame(nose)
    (mlu, mlv), (mru, mrv) = frame(mouth_l), frame(mouth_r)
    mu, mv = (mlu + mru) / 2, (mlv + mrv) / 2
    brow = tpl.brow_offset_iod
    eyes = _inside_ellipse(u, v, lu, lv, *_EYE_AXES) | _inside_ellipse(u, v, ru, rv, *_EYE_AXES)
    brows = _inside_ellipse(u, v, lu, lv - brow, *BROW_AXES_IOD) | _inside_ellipse(u, v, ru, rv - brow, *BROW_AXES_IOD)
    mouth = _inside_ellipse(u, v, mu, mv, abs(mru - mlu) / 2 + _MOUTH_PAD_U, _MOUTH_V)
    nose_half_len = max(nv, 0.2) / 2 + 0.05
    nose_mask = _inside_ellipse(u, v, nu, nv / 2 + 0.05, _NOSE_HALF_WIDTH, nose_half_len)
    top, bottom = -brow - _FACE_TOP_PAD, mv + _FACE_BOTTOM_PAD
    face = _inside_ellipse(u, v, (mu + nu) / 3, (top + bottom) / 2, _FACE_HALF_WIDTH, (bottom - top) / 2)
    jaw = face & (v >= 0.0)

    labels = np.zeros((size, size), dtype=np.int8)
    for name, mask in (("jaw_cheeks", jaw), ("nose", nose_mask), ("mouth", mouth), ("brows", brows), ("eyes", eyes)):
        labels[mask] = LABELS.index(name)  # later assignments win: eyes > brows > mouth > nose > jaw
    return labels


def region_areas(label_map: np.ndarray) -> dict[str, float]:
    """Fraction of the image each label covers (REGIONS + OTHER, summing to 1)."""
    counts = np.bincount(np.asarray(label_map, dtype=np.int64).ravel(), minlength=len(LABELS))
    return {name: float(counts[i]) / label_map.size for i, name in enumerate(LABELS)}


def region_shares(attribution: np.ndarray, label_map: np.ndarray) -> dict[str, float]:
    """Share of the positive attribution mass in each region and OTHER (sum 1; all 0 when there is no mass).

    Negative values are ignored (clipped to 0) so that shares answer "where is the evidence FOR the class".
    """
    attribution = np.asarray(attribution, dtype=np.float64)
    if attribution.shape != label_map.shape:
        raise ConfigError(f"attribution {attribution.shape} and label map {label_map.shape} differ in shape")
    mass = np.bincount(
        np.asarray(label_map, dtype=np.int64).ravel(), weights=np.clip(attribution, 0, None).ravel(),
        minlength=len(LABELS),
    )
    total = float(mass.sum())
    if total <= 0 or not np.isfinite(total):
        return {name: 0.0 for name in (*REGIONS, OTHER)}
    return {name: float(mass[LABELS.index(name)]) / total for name in (*REGIONS, OTHER)}


def region_shares_per_area(shares: dict[str, float], label_map: np.ndarray) -> dict[str, float]:
    """Share divided by the region's area fraction: 1.0 = as much attribution as its size; >1 = a hot spot."""
    areas = region_areas(label_map)
    return {name: (share / areas[name] if areas[name] > 0 else 0.0) for name, share in shares.items()}
