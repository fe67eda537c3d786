"""Model zoo: `create_model(name, ...)`, `list_models(pattern)`; one module per family registers its builders."""

from ferlab.models import convnext, fer_resnet, simple_cnn, vit  # noqa: F401  (registers builders)
from ferlab.models._registry import (
    ModelConfig,
    create_model,
    get_model_config,
    list_models,
    model_entrypoint,
    register_model,
)
from ferlab.models.preprocess import preprocess

__all__ = [
    "ModelConfig",
    "create_model",
    "get_model_config",
    "list_models",
    "model_entrypoint",
    "register_model",
    "preprocess",
]
