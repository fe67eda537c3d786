"""ferlab: train, compare, explain and deploy facial expression recognition models."""

__version__ = "0.1.0"
__all__ = ["__version__"]
