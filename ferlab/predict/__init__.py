"""Use a model on real faces: detection, alignment, Predictor (photos, folders, arrays)."""

from ferlab.predict.predictor import FacePrediction, Predictor

__all__ = ["FacePrediction", "Predictor"]
