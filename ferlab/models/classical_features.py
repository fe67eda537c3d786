"""Feature extractors for classical baselines: sklearn transformers that take uint8 N x H x W faces."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["HogFeatures", "LandmarkFeatures", "TopComponents", "geometry_features", "GEOMETRY_FEATURES"]

# CenterFace landmark order (ferlab.predict.detectors.Detection): left eye, right eye, nose, mouth left, mouth right.
_POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
_PAIRS = [(a, b) for a in range(5) for b in range(a + 1, 5)]
#: Names of the columns `geometry_features` returns (the interpretable part of landmark_svm).
GEOMETRY_FEATURES: tuple[str, ...] = (
    *(f"dist_{_POINTS[a]}_{_POINTS[b]}" for a, b in _PAIRS),
    *(f"{axis}_{p}" for p in _POINTS[2:] for axis in ("x", "y")),
    "mouth_tilt", "angle_mouth_at_nose", "angle_eyes_at_nose", "angle_eyes_at_mouth_centre", "face_found",
)


def _as_batch(images: np.ndarray) -> np.ndarray:
    arr = np.asarray(images)
    return arr[None] if arr.ndim == 2 else arr


def _progress(batch: np.ndarray, what: str):  # noqa: ANN202 - an iterable over the faces
    """A tqdm bar on stderr for dataset-sized batches (training, evaluation); silent for small ones."""
    from tqdm import tqdm

    return tqdm(batch, desc=what, unit="img", leave=False, disable=len(batch) < 2000)


class HogFeatures(TransformerMixin, BaseEstimator):
    """Histogram of oriented gradients (scikit-image) of each face; stateless, so `fit` does nothing."""

    def __init__(self, orientations: int = 9, pixels_per_cell: int = 6, cells_per_block: int = 2) -> None:
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block

    def fit(self, images: np.ndarray, y: np.ndarray | None = None) -> HogFeatures:  # noqa: ARG002 - sklearn API
        return self

    def transform(self, images: np.ndarray) -> np.ndarray:
        from skimage.feature import hog

        cell, block = (self.pixels_per_cell,) * 2, (self.cells_per_block,) * 2
        return np.stack([hog(img, orientations=self.orientations, pixels_per_cell=cell, cells_per_block=block,
                             feature_vector=True) for img in _progress(_as_batch(images), "HOG")]).astype(np.float32)


class TopComponents(TransformerMixin, BaseEstimator):
    """PCA onto at most `n_components` axes (fewer when the data has fewer samples or features)."""

    def __init__(self, n_components: int = 256, seed: int = 0) -> None:
        self.n_components = n_components
        self.seed = seed

    def fit(self, features: np.ndarray, y: np.ndarray | None = None) -> TopComponents:  # noqa: ARG002 - sklearn API
        from sklearn.decomposition import PCA

        n = max(1, min(self.n_components, *np.shape(features)))
        self.pca_ = PCA(n_components=n, random_state=self.seed).fit(features)
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        return self.pca_.transform(features).astype(np.float32)


def _angle(a: np.ndarray, vertex: np.ndarray, b: np.ndarray) -> np.ndarray:
    u, v = a - vertex, b - vertex
    cos = (u * v).sum(-1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-6)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def geometry_features(landmarks: np.ndarray) -> np.ndarray:
    """N x 5 x 2 landmarks -> N x F scale- and rotation-free geometry (see GEOMETRY_FEATURES); NaN rows -> zeros.

    Distances are divided by the inter-ocular distance; positions are in an eye-aligned frame whose origin is
    the eye midpoint and whose unit is the inter-ocular distance.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    found = ~np.isnan(pts).any(axis=(1, 2))
    pts = np.where(found[:, None, None], pts, np.array([[0, 0], [1, 0], [0.5, 0.6], [0.2, 1.0], [0.8, 1.0]]))
    eye_l, eye_r = pts[:, 0], pts[:, 1]
    iod = np.maximum(np.linalg.norm(eye_r - eye_l, axis=1), 1e-6)
    dists = np.stack([np.linalg.norm(pts[:, a] - pts[:, b], axis=1) for a, b in _PAIRS], axis=1) / iod[:, None]
    ex = (eye_r - eye_l) / iod[:, None]  # unit vector along the eyes
    ey = np.stack([-ex[:, 1], ex[:, 0]], axis=1)  # perpendicular, pointing down the face in image coordinates
    rel = (pts[:, 2:] - ((eye_l + eye_r) / 2)[:, None]) / iod[:, None, None]
    coords = np.stack([(rel * ex[:, None]).sum(-1), (rel * ey[:, None]).sum(-1)], axis=-1).reshape(len(pts), -1)
    mouth = pts[:, 4] - pts[:, 3]
    tilt = np.arctan2((mouth * ey).sum(-1), (mouth * ex).sum(-1))
    mouth_c = (pts[:, 3] + pts[:, 4]) / 2
    angles = np.stack([tilt, _angle(pts[:, 3], pts[:, 2], pts[:, 4]), _angle(eye_l, pts[:, 2], eye_r),
                       _angle(eye_l, mouth_c, eye_r)], axis=1)
    out = np.concatenate([dists, coords, angles, found[:, None].astype(np.float64)], axis=1)
    out[~found, :-1] = 0.0
    return out.astype(np.float32)


class LandmarkFeatures(TransformerMixin, BaseEstimator):
    """Geometry of the 5 CenterFace landmarks found on each (upscaled) face crop; no face -> zeros + flag 0."""

    def __init__(self, detector: str = "centerface", upscale: int = 96) -> None:
        self.detector = detector
        self.upscale = upscale

    def fit(self, images: np.ndarray, y: np.ndarray | None = None) -> LandmarkFeatures:  # noqa: ARG002 - sklearn API
        return self

    def landmarks(self, images: np.ndarray) -> np.ndarray:
        """N x 5 x 2 landmarks in the crop's own pixels (NaN where no face or no landmarks were found)."""
        import cv2

        from ferlab.predict.detectors import get_detector

        det = get_detector(self.detector)
        batch = _as_batch(images)
        out = np.full((len(batch), 5, 2), np.nan)
        for i, img in enumerate(_progress(batch, "landmarks")):
            big = cv2.resize(img, (self.upscale, self.upscale), interpolation=cv2.INTER_LINEAR)
            found = [d for d in det.detect(np.repeat(big[..., None], 3, axis=2)) if d.landmarks is not None]
            if found:
                best = max(found, key=lambda d: d.score)
                out[i] = np.asarray(best.landmarks, dtype=np.float64) * (img.shape[1] / self.upscale)
        return out

    def transform(self, images: np.ndarray) -> np.ndarray:
        return geometry_features(self.landmarks(images))
