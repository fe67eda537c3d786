"""Static int8 quantisation (QDQ) of a ferlab ONNX export, calibrated on real faces and checked against fp32.

Weights are int8 per channel, activations uint8 (u8s8: the fast path of VNNI CPUs; s8s8 measured 2x slower here).
The classifier layer and the softmax stay float (a few hundred multiply-adds per face), so the probabilities are
not rounded to 1/255 steps.
The int8 file keeps the fp32 file's ferlab metadata (classes, image_size, model_name, ...) and adds
`quantization: int8-qdq`, so `load_classifier` opens it like any ferlab export.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferlab.errors import CheckpointError, ConfigError, DataError, FerlabError
from ferlab.io import atomic_path

__all__ = ["QuantizeResult", "quantize_onnx", "int8_path", "top1_agreement", "export_metadata", "calibration_split",
           "MIN_AGREEMENT", "QUANTIZATION", "CALIBRATION_BATCH", "CHECK_SIZE"]

MIN_AGREEMENT = 0.95
QUANTIZATION = "int8-qdq"
CALIBRATION_BATCH = 64
CHECK_SIZE = 1024
_RUN_BATCH = 256


@dataclass(frozen=True)
class QuantizeResult:
    path: Path
    bytes: int
    fp32_bytes: int
    agreement: float
    max_abs_diff: float
    num_checked: int
    num_calibration: int


def int8_path(onnx_path: str | Path) -> Path:
    """Where the int8 twin of `OUT.onnx` goes: `OUT.int8.onnx` beside it."""
    path = Path(onnx_path)
    return path.with_name(f"{path.stem}.int8.onnx")


def top1_agreement(probs_a: np.ndarray, probs_b: np.ndarray) -> float:
    """Share of rows whose argmax (ties -> lowest index) is the same in both probability matrices."""
    return float(np.mean(np.argmax(probs_a, axis=1) == np.argmax(probs_b, axis=1)))


def calibration_split(images: np.ndarray, splits: np.ndarray | None, size: int, *, seed: int = 0,
                      check_size: int = CHECK_SIZE) -> tuple[np.ndarray, np.ndarray, str]:
    """A seeded sample of `size` faces from the "train" split (all faces when there is none) for calibration, up to
    `check_size` other faces for the agreement check (the calibration faces when none are left), and the pool name."""
    train = np.asarray(splits) == "train" if splits is not None else np.zeros(len(images), bool)
    pool_name = "train split" if train.any() else "all faces"
    pool = np.flatnonzero(train) if train.any() else np.arange(len(images))
    if len(pool) == 0:
        raise DataError("the calibration source holds no faces")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(pool, min(size, len(pool)), replace=False)
    rest = np.setdiff1d(np.arange(len(images)), chosen)
    check = rng.choice(rest, min(check_size, len(rest)), replace=False) if len(rest) else chosen
    return images[np.sort(chosen)], images[np.sort(check)], pool_name


def _calibration_reader(faces: np.ndarray):  # noqa: ANN202 - CalibrationDataReader is imported lazily
    """Feeds `faces` (uint8 N x H x W) to the calibrator as N x 1 x H x W batches of CALIBRATION_BATCH."""
    from onnxruntime.quantization import CalibrationDataReader

    class FaceReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(range(0, len(faces), CALIBRATION_BATCH))

        def get_next(self) -> dict[str, np.ndarray] | None:
            start = next(self._batches, None)
            if start is None:
                return None
            return {"faces": np.ascontiguousarray(faces[start:start + CALIBRATION_BATCH, None])}

    return FaceReader()


def _head_nodes(path: Path) -> list[str]:
    """Names of the nodes that write the graph outputs (the softmax) and of the nodes feeding them (the classifier):
    kept in float so the probabilities are not rounded to 1/255 steps and still sum to 1."""
    import onnx

    graph = onnx.load(str(path)).graph
    producer = {out: node for node in graph.node for out in node.output}
    last = [producer[o.name] for o in graph.output if o.name in producer]
    feeding = [producer[i] for node in last for i in node.input if i in producer]
    return sorted({node.name for node in last + feeding if node.name})


def _run(session, faces: np.ndarray) -> np.ndarray:  # noqa: ANN001
    return np.concatenate([session.run(None, {"faces": np.ascontiguousarray(faces[i:i + _RUN_BATCH, None])})[0]
                           for i in range(0, len(faces), _RUN_BATCH)])


def _faces(name: str, faces: np.ndarray | None, size: int) -> np.ndarray:
    """Validate a uint8 N x size x size face array (a one-line DataError otherwise)."""
    arr = np.asarray(faces) if faces is not None else np.zeros((0,), np.uint8)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[1:] != (size, size) or len(arr) == 0:
        raise DataError(f"{name} faces must be a non-empty uint8 N x {size} x {size} array "
                        f"(the model's input size), got {arr.dtype} {arr.shape}")
    return arr


def export_metadata(path: str | Path) -> dict[str, str]:
    """The custom metadata of a ferlab fp32 ONNX export (see `_read_fp32` for the errors)."""
    return {p.key: p.value for p in _read_fp32(Path(path)).metadata_props}


def _read_fp32(path: Path):  # noqa: ANN202 - onnx.ModelProto
    """Load a ferlab fp32 export; missing, foreign, corrupt or already quantised files are CheckpointErrors."""
    import onnx

    if not path.is_file():
        raise CheckpointError(f"ONNX model not found: {path}")
    try:
        proto = onnx.load(str(path))
    except Exception as err:  # noqa: BLE001 - onnx raises protobuf/decode errors for foreign files
        raise CheckpointError(f"cannot load ONNX model {path}: {str(err).splitlines()[0]}") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if "classes" not in meta or "image_size" not in meta:
        raise CheckpointError(f"{path} is not a ferlab ONNX export (no class names in its metadata)")
    if "quantization" in meta:
        raise CheckpointError(f"{path} is already quantised ({meta['quantization']}); quantise the fp32 export")
    return proto


def quantize_onnx(fp32_onnx: str | Path, out: str | Path, calibration_faces: np.ndarray, *,
                  check_faces: np.ndarray | None = None, min_agreement: float = MIN_AGREEMENT) -> QuantizeResult:
    """Write the int8 (QDQ) model to `out` atomically; raises FerlabError if its top-1 agreement with fp32 on
    `check_faces` (default: the calibration faces) is below `min_agreement` (nothing written then)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

    fp32_onnx, out = Path(fp32_onnx), Path(out)
    if fp32_onnx.resolve() == out.resolve():
        raise ConfigError(f"the int8 model must not overwrite its fp32 source {fp32_onnx}")
    proto = _read_fp32(fp32_onnx)
    meta = {p.key: p.value for p in proto.metadata_props}
    size = int(meta["image_size"])
    calibration = _faces("calibration", calibration_faces, size)
    check = _faces("check", calibration if check_faces is None else check_faces, size)
    with tempfile.TemporaryDirectory(prefix="ferlab-quant-") as work, atomic_path(out, suffix=".onnx") as tmp:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(fp32_onnx), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(tmp), _calibration_reader(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        nodes_to_exclude=_head_nodes(prepared))
        quantized = onnx.load(str(tmp))
        kept = {p.key: p for p in quantized.metadata_props}
        for key, value in {**meta, "quantization": QUANTIZATION}.items():  # ORT keeps them today; do not rely on it
            entry = kept[key] if key in kept else quantized.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(quantized, str(tmp))
        sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fp32_onnx, tmp)]
        reference, probs = (_run(s, check) for s in sessions)
        agreement = top1_agreement(probs, reference)
        diff = float(np.abs(probs - reference).max())
        if not agreement >= min_agreement:
            raise FerlabError(f"int8 model disagrees with fp32: top-1 agreement {agreement:.2%} < {min_agreement:.0%} "
                              f"on {len(check)} faces (max abs probability difference {diff:.3f}); {out} not written")
    return QuantizeResult(path=out, bytes=out.stat().st_size, fp32_bytes=fp32_onnx.stat().st_size,
                          agreement=agreement, max_abs_diff=diff, num_checked=len(check),
                          num_calibration=len(calibration))
