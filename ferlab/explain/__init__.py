"""Explanations: attribution methods, facial-region shares, faithfulness and sanity checks, overlays."""

__all__ = ["FaceExplanation", "explain_faces", "explain_image", "overlay_png"]


def __getattr__(name: str):  # noqa: ANN202 - lazy: importing ferlab.explain must not import torch
    if name in __all__:
        from ferlab.explain import api

        return getattr(api, name)
    raise AttributeError(f"module 'ferlab.explain' has no attribute {name!r}")
