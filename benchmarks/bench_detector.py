"""Face-detector speed vs recall: CenterFace variants (graph fix, working resolution, min_face rule, int8, threads).

Run: .venv/bin/python benchmarks/bench_detector.py [--repeats 30] [--clock cpu|wall]
                                                   [--only speed,predict,recall,int8]

speed   `detect()` on a 1280x720 photo and a 640x480 frame (with --clock wall also 1 vs 2 threads and spinning
        off), variants interleaved (A, B, C, A, B, C, ...) so a busy machine slows them alike; medians and ratios
        to the `before` row (the graph as it was loaded before: weights listed as graph inputs). `--clock cpu`
        times the process CPU (robust on a shared machine, meaningful for 1-thread variants only); `--clock wall`
        is what a user waits for (use it on a quiet machine).
predict `Predictor.predict()` (bundled model, its TTA) with a few of those detectors: the whole photo/frame path.
recall  the smallest face (CenterFace box width, source px) still found on a 1280x720 photo and a 640x480 frame:
        the astronaut scaled down step by step, pasted at 3 positions; found = at all positions.
int8    the int8 detector against fp32 on held-out scenes (astronaut at new sizes/places, composed LFW faces from
        scikit-image): faces matched, box IoU, landmark error / inter-ocular distance, score difference.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

PHOTO, FRAME = (1280, 720), (640, 480)


def _canvas(size: tuple[int, int], face: np.ndarray, side: int, at: tuple[float, float]) -> tuple[np.ndarray, int, int]:
    """`face` scaled to side x side on a grey size[0] x size[1] canvas at fractional position `at`."""
    import cv2

    w, h = size
    canvas = np.full((h, w, 3), 90, np.uint8)
    x, y = int(at[0] * (w - side)), int(at[1] * (h - side))
    canvas[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    return canvas, x, y


def _scene(size: tuple[int, int]) -> np.ndarray:
    """The astronaut (image height, at most 512 px) in the top-left corner, as in bench_predict."""
    from skimage import data

    side = min(size[1], 512)
    return _canvas(size, data.astronaut(), side, (0.0, 0.0))[0]


def _legacy(detector):  # noqa: ANN001, ANN202
    """A CenterFace whose session runs the graph as it was loaded before (weights as graph inputs)."""
    import onnx
    import onnxruntime as ort
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    from ferlab.predict.detectors import _CENTERFACE_OUTPUTS, centerface_model_path

    model = onnx.load(str(centerface_model_path()))
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    inputs["input.1"] = ["B", 3, "H", "W"]
    model = update_inputs_outputs_dims(model, inputs, _CENTERFACE_OUTPUTS)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = detector.config.threads
    detector._session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return detector


def _variants(threads: int, with_threads: bool) -> dict[str, object]:
    from ferlab.predict.detectors import CenterFace, DetectorConfig, centerface_model_path

    path = centerface_model_path()

    def make(**kw: object) -> CenterFace:
        return CenterFace(path, config=DetectorConfig(threads=kw.pop("threads", threads), **kw))

    out = {"before (fp32 640, weights as inputs)": _legacy(make()), "fp32 640": make()}
    for side in (512, 480, 416, 320):
        out[f"fp32 {side}"] = make(max_side=side)
    out["fp32 640, min_face 48"] = make(min_face=48)
    out["int8 640"] = make(precision="int8")
    out["int8 480"] = make(precision="int8", max_side=480)
    out["int8 640, min_face 48"] = make(precision="int8", min_face=48)
    if with_threads:
        for n in (1, 2):
            out[f"fp32 640, {n} thread(s)"] = make(threads=n)
            out[f"int8 640, {n} thread(s)"] = make(precision="int8", threads=n)
        out["fp32 640, 2 threads, no spinning"] = _no_spinning(make(threads=2))
        out["int8 640, 2 threads, no spinning"] = _no_spinning(make(precision="int8", threads=2))
    return out


def _no_spinning(detector):  # noqa: ANN001, ANN202
    """The detector's session rebuilt with `session.intra_op.allow_spinning` = 0 (idle pool threads sleep)."""
    import onnxruntime as ort

    from ferlab.predict.centerface_int8 import int8_model
    from ferlab.predict.detectors import centerface_graph, centerface_model_path

    graph = centerface_graph(centerface_model_path())
    payload = int8_model(graph) if detector.precision == "int8" else graph.SerializeToString()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = detector.config.threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    detector._session = ort.InferenceSession(payload, opts, providers=["CPUExecutionProvider"])
    return detector


def _interleaved(fns: dict[str, Callable[[], object]], repeats: int, clock: Callable[[], float]) -> dict[str, float]:
    for fn in fns.values():
        fn()  # warm-up
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock()
            fn()
            samples[name].append(clock() - start)
    return {k: statistics.median(v) for k, v in samples.items()}


def _print_times(first: str, last: str, times: dict[str, dict[str, float]], base: str, extra: dict[str, str]) -> None:
    """Markdown table: per variant, photo and frame ms with the speed-up over `base`, and one extra column."""
    print(f"| {first} | 1280x720 ms | x faster | 640x480 ms | x faster | {last} |")
    print("|---|---:|---:|---:|---:|---|")
    for name, note in extra.items():
        p, f = times["photo"][name], times["frame"][name]
        print(f"| {name} | {p * 1000:.1f} | {times['photo'][base] / p:.2f} | {f * 1000:.1f} | "
              f"{times['frame'][base] / f:.2f} | {note} |")


def speed(args: argparse.Namespace) -> None:
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    variants = _variants(args.threads, args.clock == "wall")
    photo, frame = _scene(PHOTO), _scene(FRAME)
    times = {}
    for label, img in (("photo", photo), ("frame", frame)):
        times[label] = _interleaved({k: (lambda d=d, i=img: d.detect(i)) for k, d in variants.items()},
                                    args.repeats, clock)
    base = next(iter(variants))
    print(f"\n## speed: detect() median {args.clock} ms over {args.repeats} interleaved rounds "
          f"(threads={args.threads or 'default'})\n")
    _print_times("variant", "faces (photo, frame)", times, base,
                 {name: f"{len(det.detect(photo))}, {len(det.detect(frame))}" for name, det in variants.items()})


def pipeline(args: argparse.Namespace) -> None:
    from ferlab.predict.predictor import Predictor

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    variants = _variants(args.threads, False)
    keep = ("before (fp32 640, weights as inputs)", "fp32 640", "fp32 480", "int8 640", "int8 480",
            "int8 640, min_face 48")
    base = Predictor.from_pretrained()
    model_path = getattr(getattr(base.classifier, "session", None), "_model_path", None)
    if args.threads and model_path:  # the classifier too, or its idle pool threads spin on the CPU clock
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        base.classifier.session = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    preds = {k: Predictor(base.classifier, detector=variants[k], tta=base.tta) for k in keep}
    photo, frame = _scene(PHOTO), _scene(FRAME)
    times = {label: _interleaved({k: (lambda p=p, i=img: p.predict(i)) for k, p in preds.items()}, args.repeats, clock)
             for label, img in (("photo", photo), ("frame", frame))}
    print(f"\n## predict: Predictor.predict() median {args.clock} ms (bundled model, tta={base.tta}), "
          f"{args.repeats} interleaved rounds\n")
    _print_times("detector", "label (photo)", times, keep[0],
                 {name: ",".join(face.label for face in pred.predict(photo)) for name, pred in preds.items()})


def _found(det, size: tuple[int, int], face: np.ndarray, side: int) -> bool:  # noqa: ANN001
    """True when the face is found at all 3 positions (a detection centred on the face)."""
    for at in ((0.5, 0.5), (0.13, 0.31), (0.77, 0.71)):
        img, x, y = _canvas(size, face, side, at)
        cx, cy = x + side * 0.44, y + side * 0.23  # the astronaut's face centre in her 512 x 512 image
        if not any(abs(d.box[0] + d.box[2] / 2 - cx) < side * 0.1 and abs(d.box[1] + d.box[3] / 2 - cy) < side * 0.1
                   for d in det.detect(img)):
            return False
    return True


def recall(args: argparse.Namespace) -> None:
    from skimage import data

    from ferlab.predict.detectors import CenterFace, DetectorConfig, centerface_model_path

    face = data.astronaut()
    box_ratio = 88 / 512  # CenterFace's box width on the full-resolution 512-px astronaut
    configs = [DetectorConfig(max_side=s) for s in (640, 512, 480, 416, 320)]
    configs += [DetectorConfig(min_face=m) for m in (32, 40, 48, 64)]
    configs += [DetectorConfig(precision="int8"), DetectorConfig(precision="int8", max_side=480),
                DetectorConfig(precision="int8", min_face=48)]
    sides = list(range(512, 60, -8))
    grids = [_lfw_grid(cell) for cell in (96, 64, 48)]
    print("\n## recall: smallest face found (box width in source px; the astronaut scaled, 3 positions each), and "
          "faces found of those placed in grids of LFW faces on a 1280x720 photo\n")
    print("| precision | max_side | min_face | 1280x720 photo | 640x480 frame | LFW 96 px | LFW 64 px | LFW 48 px |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for cfg in configs:
        det = CenterFace(centerface_model_path(), config=cfg)
        cells = []
        for size in (PHOTO, FRAME):
            smallest = None
            for side in sides:
                if side > size[1]:
                    continue
                if not _found(det, size, face, side):
                    break
                smallest = side
            cells.append("none" if smallest is None else f"{smallest * box_ratio:.0f} px")
        cells += [f"{len(det.detect(img))}/{count}" for img, count in grids]
        print(f"| {cfg.precision} | {cfg.max_side} | {cfg.min_face or '-'} | {' | '.join(cells)} |")


def _lfw_grid(cell: int) -> tuple[np.ndarray, int]:
    """LFW faces (scikit-image's 25 x 25 gray tight crops) scaled to `cell` px in a grid on a 1280x720 photo."""
    import cv2
    from skimage import data

    lfw = data.lfw_subset()[:100]  # the first 100 are faces
    grid = np.full((PHOTO[1], PHOTO[0]), 128, np.uint8)
    pad = cell // 3
    cols = PHOTO[0] // (cell + pad)
    count = min(len(lfw), cols * (PHOTO[1] // (cell + pad)))
    for k in range(count):
        r, c = divmod(k, cols)
        y, x = r * (cell + pad) + pad // 2, c * (cell + pad) + pad // 2
        grid[y:y + cell, x:x + cell] = cv2.resize((lfw[k] * 255).astype(np.uint8), (cell, cell))
    return np.repeat(grid[..., None], 3, axis=2), count


def _heldout() -> list[np.ndarray]:
    """Scenes not used for calibration: the astronaut at other sizes/places, LFW faces composed into a grid."""
    from skimage import data

    scenes = [_canvas(PHOTO, data.astronaut(), s, at)[0]
              for s, at in ((440, (0.9, 0.2)), (260, (0.3, 0.8)), (150, (0.6, 0.4)), (110, (0.05, 0.5)))]
    scenes.append(_scene(FRAME))
    scenes.extend(_lfw_grid(cell)[0] for cell in (96, 64))
    return scenes


def _iou(a: tuple, b: tuple) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw, ih = max(0.0, min(ax + aw, bx + bw) - max(ax, bx)), max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return iw * ih / (aw * ah + bw * bh - iw * ih)


def _agreement(ref_dets: list, other_dets: list) -> str:
    """A table row: faces, matches (IoU >= 0.5), IoU, landmark error / inter-ocular distance, score difference."""
    matched, ious, lm_err, dscore = 0, [], [], []
    for a, b in zip(ref_dets, other_dets, strict=True):
        for d in a:
            best = max(b, key=lambda e, d=d: _iou(d.box, e.box), default=None)
            if best is None or _iou(d.box, best.box) < 0.5:
                continue
            matched += 1
            ious.append(_iou(d.box, best.box))
            eyes = float(np.linalg.norm(d.landmarks[0] - d.landmarks[1])) or 1.0
            lm_err.append(float(np.linalg.norm(d.landmarks - best.landmarks, axis=1).mean()) / eyes)
            dscore.append(abs(d.score - best.score))
    counts = f"{sum(map(len, ref_dets))} | {sum(map(len, other_dets))} | {matched}"
    if not matched:
        return f"{counts} | - | - | - |"
    return (f"{counts} | {np.median(ious):.3f} / {min(ious):.3f} | {np.median(lm_err):.3f} / {max(lm_err):.3f} | "
            f"{np.median(dscore):.3f} / {max(dscore):.3f} |")


def int8_agreement(args: argparse.Namespace) -> None:
    from ferlab.predict.detectors import CenterFace, Detection, DetectorConfig, centerface_model_path

    path = centerface_model_path()
    ref, q = CenterFace(path, config=DetectorConfig()), CenterFace(path, config=DetectorConfig(precision="int8"))
    scenes = _heldout()
    ref_dets = [ref.detect(img) for img in scenes]

    def shifted(img: np.ndarray) -> list:  # fp32 on the scene moved 1 px right and down, boxes moved back
        moved = np.full_like(img, 90)
        moved[1:, 1:] = img[:-1, :-1]
        return [Detection(box=(d.box[0] - 1, d.box[1] - 1, d.box[2], d.box[3]), score=d.score,
                          landmarks=d.landmarks - 1) for d in ref.detect(moved)]

    print("\n## int8 vs fp32 on held-out scenes (4 astronaut photos, 1 frame, 2 grids of LFW faces); the fp32 row is "
          "the noise floor: fp32 against itself on the scenes shifted by 1 px\n")
    print("| compared to fp32 | faces fp32 | faces other | matched (IoU >= 0.5) | IoU median / min "
          "| landmark err / eye dist, median / max | score diff median / max |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| int8 | {_agreement(ref_dets, [q.detect(img) for img in scenes])}")
    print(f"| fp32, 1 px shift | {_agreement(ref_dets, [shifted(img) for img in scenes])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="ONNX Runtime intra-op threads (default: 1 with --clock cpu, else ORT's default)")
    parser.add_argument("--only", default="speed,predict,recall,int8")
    args = parser.parse_args()
    if args.threads is None:
        args.threads = 1 if args.clock == "cpu" else 0
    parts = {"speed": speed, "predict": pipeline, "recall": recall, "int8": int8_agreement}
    for name in args.only.split(","):
        parts[name.strip()](args)


if __name__ == "__main__":
    from _cli import run

    run(main)
