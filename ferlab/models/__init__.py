"""Model zoo: `create_model(name, ...)`, `list_models(pattern)`; one module per family registers its builders."""

from ferlab.models import (  # noqa: F401  (registers builders)
    backbones,
    cbam,
    convnext,
    fer_resnet,
    resnet,
    simple_cnn,
    vgg,
    vit,
    xception,
)
from ferlab.models._registry import (
    ModelConfig,
    create_model,
    get_model_config,
    list_models,
    model_entrypoint,
    register_model,
)
from ferlab.models.finetune import set_backbone_trainable, split_backbone_head
from ferlab.models.preprocess import preprocess
from ferlab.models.weights import load_weights

__all__ = [
    "ModelConfig",
    "create_model",
    "get_model_config",
    "list_models",
    "model_entrypoint",
    "register_model",
    "preprocess",
    "split_backbone_head",
    "set_backbone_trainable",
    "load_weights",
]
