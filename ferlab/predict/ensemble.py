"""Ensembles: several classifiers of one class scheme, their (TTA-averaged) probabilities averaged.

An ensemble is built in memory from model files (`ferlab eval A --ensemble B C`) or loaded from an ensemble file,
`*.json` with `{"format": "ferlab-ensemble", "members": ["a.int8.onnx", "b.pt"], "weights": [1, 1]}` (member paths
relative to the file), which every command that takes a model path accepts, like a checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ferlab.errors import CheckpointError
from ferlab.io import atomic_open
from ferlab.train.checkpoint import Classifier, check_tta, load_classifier

__all__ = ["ENSEMBLE_FORMAT", "EnsembleClassifier", "load_ensemble", "load_ensemble_file", "write_ensemble_file",
           "main"]

ENSEMBLE_FORMAT = "ferlab-ensemble"


class EnsembleClassifier(Classifier):
    """The weighted mean of member classifiers' probabilities; members may differ in backend and input size (each
    resizes the faces to its own), not in classes (a member with the same classes in another order is re-ordered)."""

    def __init__(self, members: Sequence[Classifier], weights: Sequence[float] | None = None,
                 sources: Sequence[str] | None = None) -> None:
        if not members:
            raise CheckpointError("an ensemble needs at least one model")
        first = members[0]
        self.members = list(members)
        self._orders = [self._column_order(first.classes, m) for m in self.members]
        w = np.ones(len(members)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(members),) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise CheckpointError(f"ensemble weights must be {len(members)} non-negative numbers, not all zero")
        self.weights = w / w.sum()
        self.sources = [str(s) for s in sources] if sources else [m.model_name for m in self.members]
        info: dict[str, Any] = dict(first.info or {})
        info.update(path=" + ".join(self.sources), ensemble=self.sources, ensemble_weights=self.weights.tolist())
        name = "ensemble(" + "+".join(m.model_name for m in self.members) + ")"
        super().__init__(first.classes, name, max(m.image_size for m in self.members), info)

    @staticmethod
    def _column_order(classes: tuple[str, ...], member: Classifier) -> list[int]:
        if set(member.classes) != set(classes) or len(member.classes) != len(classes):
            raise CheckpointError(f"ensemble members disagree on classes: {', '.join(classes)} vs "
                                  f"{', '.join(member.classes)} ({member.model_name})")
        return [list(member.classes).index(c) for c in classes]

    def predict_proba(self, images: np.ndarray, batch_size: int = 256, tta: str = "none") -> np.ndarray:
        """Each member's TTA-averaged probabilities (its own resize), columns aligned, weighted mean."""
        check_tta(tta)
        out: np.ndarray | None = None
        for member, order, weight in zip(self.members, self._orders, self.weights, strict=True):
            probs = np.asarray(member.predict_proba(images, batch_size=batch_size, tta=tta))[:, order] * weight
            out = probs if out is None else out + probs
        return out.astype(np.float32)


def load_ensemble(sources: Sequence[str | Path], weights: Sequence[float] | None = None) -> Classifier:
    """One model file -> its classifier; several -> their EnsembleClassifier (missing or bad file: CheckpointError)."""
    paths = [Path(s) for s in sources]
    for p in paths:
        if not p.exists():
            raise CheckpointError(f"model not found: {p}")
    members = [load_classifier(p) for p in paths]  # a run directory loads its best.pt
    if len(members) == 1 and weights is None:
        return members[0]
    return EnsembleClassifier(members, weights, sources=[str(p) for p in paths])


def _read_spec(path: Path) -> tuple[list[str], list[float] | None]:
    """An ensemble file's member paths (resolved against its folder) and weights; CheckpointError if malformed."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"cannot read ensemble file {path}: {err}") from None
    if not isinstance(spec, dict) or spec.get("format") != ENSEMBLE_FORMAT:
        raise CheckpointError(f"{path} is not a ferlab ensemble file (needs \"format\": \"{ENSEMBLE_FORMAT}\")")
    members = spec.get("members")
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise CheckpointError(f"{path}: \"members\" must be a non-empty list of model paths")
    weights = spec.get("weights")
    if weights is not None and (not isinstance(weights, list) or len(weights) != len(members)
                                or not all(isinstance(w, int | float) and not isinstance(w, bool) for w in weights)):
        raise CheckpointError(f"{path}: \"weights\" must be a list of {len(members)} numbers")
    return [m if Path(m).is_absolute() else str(path.parent / m) for m in members], weights


def _read_acyclic_spec(path: Path, inside: tuple[Path, ...] = ()) -> tuple[list[str], list[float] | None]:
    """`_read_spec`, refusing an ensemble file that names itself, directly or through other ensemble files (it
    recursed until Python's stack ran out)."""
    here = path.resolve()
    if here in inside:
        raise CheckpointError(f"ensemble file {path} names itself through its members (a cycle)")
    members, weights = _read_spec(path)
    for member in members:
        if Path(member).suffix.lower() == ".json" and Path(member).is_file():
            _read_acyclic_spec(Path(member), (*inside, here))
    return members, weights


def load_ensemble_file(path: str | Path) -> EnsembleClassifier:
    """An ensemble file (`{"format": "ferlab-ensemble", "members": [...], "weights": [...]}`) -> its classifier."""
    path = Path(path)
    members, weights = _read_acyclic_spec(path)
    clf = load_ensemble(members, weights if weights is not None else [1.0] * len(members))
    assert isinstance(clf, EnsembleClassifier)
    return clf


def write_ensemble_file(path: str | Path, members: Sequence[str | Path], weights: Sequence[float] | None = None,
                        **extra: Any) -> Path:
    """Write an ensemble file atomically; members are stored relative to its folder when they live under it."""
    path = Path(path)
    if weights is not None and len(weights) != len(members):
        raise CheckpointError(f"{len(members)} ensemble members but {len(weights)} weights")
    base = path.parent.resolve()
    rel = []
    for m in members:
        mp = Path(m).resolve()
        rel.append(str(mp.relative_to(base)) if mp.is_relative_to(base) else str(mp))
    spec = {"format": ENSEMBLE_FORMAT, "members": rel, "weights": list(weights or [1.0] * len(rel)), **extra}
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh, indent=2)
        fh.write("\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ferlab.predict.ensemble OUT.json MODEL MODEL... [--weights W W...]`: write an ensemble file."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m ferlab.predict.ensemble", description=main.__doc__)
    parser.add_argument("out", help="the ensemble file to write (.json)")
    parser.add_argument("members", nargs="+", help="model files (.pt, .onnx) or run directories")
    parser.add_argument("--weights", nargs="+", type=float, default=None, help="one weight per member (default 1)")
    args = parser.parse_args(argv)
    try:
        if not args.out.endswith(".json"):
            raise CheckpointError(f"an ensemble file must end in .json: {args.out}")
        # load first: a missing member or a class clash leaves any existing file untouched
        clf = load_ensemble(args.members, args.weights or [1.0] * len(args.members))
        path = write_ensemble_file(args.out, args.members, args.weights)
    except CheckpointError as err:
        print(f"ensemble: error: {err}", file=sys.stderr)
        return 2
    assert isinstance(clf, EnsembleClassifier)
    print(f"ensemble: {path} = {' + '.join(clf.sources)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
