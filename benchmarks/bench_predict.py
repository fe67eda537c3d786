"""Prediction speed on this machine: batched aligned faces/s (PyTorch, ONNX Runtime fp32 and int8, int8 with the
shipped TTA), single-face latency, a 1280x720 photo detected + classified, 640x480 frames per second (single
photos, and a whole video file through the video pipeline: detection every few frames on a downscaled copy,
tracking, classification, smoothing, annotated MP4 + CSV written), and the hand-written "Haar + per-face model
call" loop people write as the baseline.

Run: .venv/bin/python benchmarks/bench_predict.py [--model CHECKPOINT] [--model-name fer_resnet]
Without --model it uses the bundled model if present, else an untrained model of --model-name (speed does not
depend on the weights). Targets: >= 2,000 faces/s batched, <= 3 ms single face (ORT), <= 40 ms per 1280x720
photo, >= 30 frames/s at 640x480.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _timed(fn, repeats: int) -> float:  # noqa: ANN001
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _checkpoint(args: argparse.Namespace, tmp: Path) -> tuple[Path, str]:
    from ferlab.predict.predictor import bundled_model_path

    if args.model:
        return Path(args.model), args.model
    if bundled_model_path().is_file():
        return bundled_model_path(), "bundled model"
    import torch

    from ferlab.labels import EMOTIONS
    from ferlab.models import create_model
    from ferlab.train.checkpoint import FORMAT, VERSION, save_checkpoint

    model = create_model(args.model_name)
    path = save_checkpoint(tmp / "untrained.pt", {
        "format": FORMAT, "version": VERSION, "model_name": args.model_name, "model_kwargs": {},
        "classes": list(EMOTIONS), "image_size": 48, "config": {}, "epoch": 0, "metrics": {},
        "model_state": model.state_dict()})
    del torch
    return path, f"untrained {args.model_name} (no bundled model yet)"


def _int8(onnx_path: Path, tmp: Path, image_size: int) -> Path:
    """The int8 (QDQ) twin of the temp export, calibrated on 512 drawn faces: speed does not depend on the
    calibration, so the agreement floor is off here (`ferlab export --int8` checks it on real faces)."""
    from ferlab.data.synthetic import synthetic_faces
    from ferlab.export.quantize import quantize_onnx

    faces = synthetic_faces(n_per_class=74, image_size=image_size, test_fraction=0).images[:512]
    return quantize_onnx(onnx_path, tmp / "model.int8.onnx", faces, min_agreement=0.0).path


def _scene(width: int, height: int) -> np.ndarray:
    import cv2
    from skimage import data

    face = data.astronaut()
    canvas = np.full((height, width, 3), 90, np.uint8)
    scale = min(height / face.shape[0], 1.0)
    face = cv2.resize(face, (int(face.shape[1] * scale), int(face.shape[0] * scale)))
    canvas[:face.shape[0], :face.shape[1]] = face
    return canvas


def _video(path: Path, frames: int = 90, fps: float = 30.0) -> Path:
    """A 640x480 clip: the astronaut (about 240 px) drifting right 2 px per frame on a plain background."""
    import cv2
    from skimage import data

    face = cv2.resize(data.astronaut(), (240, 240), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for k in range(frames):
        canvas = np.full((480, 640, 3), 90, np.uint8)
        canvas[120:360, 40 + 2 * k:280 + 2 * k] = face
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--model-name", default="fer_resnet")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import cv2
    import torch

    from ferlab.export.model_card import MIN_FACES_PER_SECOND
    from ferlab.export.onnx import export_onnx
    from ferlab.predict.predictor import Predictor, shipped_tta
    from ferlab.predict.video import VideoConfig, process_video
    from ferlab.train.checkpoint import load_classifier

    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        ckpt, label = _checkpoint(args, tmp)
        onnx_path = export_onnx(ckpt, tmp / "model.onnx").path
        torch_clf, ort_clf = load_classifier(ckpt), load_classifier(onnx_path)
        int8_clf = load_classifier(_int8(onnx_path, tmp, ort_clf.image_size))
        faces = np.random.default_rng(0).integers(0, 256, (1024, 48, 48), dtype=np.uint8)
        for name, clf in (("PyTorch", torch_clf), ("ONNX Runtime", ort_clf), ("ONNX Runtime int8", int8_clf)):
            seconds = _timed(lambda c=clf: c.predict_proba(faces, batch_size=256), args.repeats)
            rows.append((f"aligned faces/s, batch 256, {name}", f"{len(faces) / seconds:,.0f}", ">= 2,000"))
        tta = shipped_tta(ckpt)
        seconds = _timed(lambda: int8_clf.predict_proba(faces, batch_size=256, tta=tta), args.repeats)
        rows.append((f"aligned faces/s, batch 256, ONNX Runtime int8, shipped TTA ({tta})",
                     f"{len(faces) / seconds:,.0f}", f">= {MIN_FACES_PER_SECOND}"))
        one = faces[:1]
        latency = _timed(lambda: ort_clf.predict_proba(one, batch_size=1), args.repeats * 20)
        rows.append(("single-face latency, ONNX Runtime", f"{latency * 1000:.2f} ms", "<= 3 ms"))

        predictor = Predictor(ort_clf)
        photo = _scene(1280, 720)
        found = len(predictor.predict(photo))
        photo_s = _timed(lambda: predictor.predict(photo), args.repeats)
        rows.append((f"1280x720 photo, detect + classify ({found} face)", f"{photo_s * 1000:.1f} ms", "<= 40 ms"))
        frame = _scene(640, 480)
        frame_s = _timed(lambda: predictor.predict(frame), args.repeats)
        rows.append(("640x480 frames/s, detect + classify", f"{1 / frame_s:.1f}", ">= 30"))
        clip, vcfg = _video(tmp / "clip.mp4"), VideoConfig(progress=False)
        tracks = len(process_video(predictor, clip, tmp / "video-out", vcfg).tracks)
        video_s = _timed(lambda: process_video(predictor, clip, tmp / "video-out", vcfg), max(1, args.repeats // 2))
        rows.append((f"640x480 video file frames/s, --out ({tracks} track, detect 1/{vcfg.detect_every})",
                     f"{90 / video_s:.1f}", ">= 30"))

        # The baseline people write by hand: Haar cascade, then one model call per face.
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        model = torch_clf.torch_model

        def baseline() -> None:
            gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
            for x, y, w, h in cascade.detectMultiScale(gray, 1.1, 5, minSize=(30, 30)):
                crop = cv2.resize(gray[y:y + h, x:x + w], (48, 48)).astype(np.float32) / 255
                with torch.no_grad():
                    model(torch.from_numpy((crop - 0.5) / 0.5)[None, None])

        baseline_s = _timed(baseline, args.repeats)
        rows.append(("baseline: Haar + per-face model call, 1280x720", f"{baseline_s * 1000:.1f} ms", "(reference)"))
    print(f"model: {label}; detector: {predictor.detector}; threads: {torch.get_num_threads()}")
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | {'value':>10} | {'target':>10} |")
    print(f"|{'-' * (width + 2)}|{'-' * 12}|{'-' * 12}|")
    for name, value, target in rows:
        print(f"| {name:<{width}} | {value:>10} | {target:>10} |")


if __name__ == "__main__":
    from _cli import run

    run(main)
