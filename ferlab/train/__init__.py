"""Training: `TrainConfig` (frozen dataclass) and `fit(cfg)` -> run directory; checkpoints and classifiers."""

from ferlab.train.checkpoint import Classifier, load_checkpoint, load_classifier, load_model
from ferlab.train.config import TrainConfig
from ferlab.train.fit import fit

__all__ = ["TrainConfig", "fit", "load_checkpoint", "load_model", "load_classifier", "Classifier"]
