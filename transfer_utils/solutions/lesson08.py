"""Reference answers to the exercises of lesson 08 (ResNet and EfficientNet image transfer), for its checks.

Lessons: 08.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from transfer_utils.data import image_tensors
from transfer_utils.methods import parameter
from transfer_utils.models.parts import count_parameters
from transfer_utils.models.pretrained import ImageBackbone
from transfer_utils.models.small_resnet import SmallResNet


def trainable_when_frozen(model: SmallResNet, b: int) -> int:
    """Parameters left to train with the stem and the first ``b`` blocks frozen (b = 0: nothing frozen)."""
    frozen = copy.deepcopy(model)
    parameter.freeze_stages(frozen.stages(), b + 1 if b > 0 else 0)
    return count_parameters(frozen, trainable_only=True)


def imagenet_names(backbone: ImageBackbone, photos: list[np.ndarray]) -> list[str]:
    """The top-1 ImageNet class name of each RGB photo: central square, 224 pixels, the backbone's scaling."""
    x = backbone.preprocess(np.stack([image_tensors.square_photo(p, 224) for p in photos]), 224)
    with torch.no_grad():
        logits = backbone.classifier.eval()(x)
    return [backbone.categories[int(i)] for i in logits.argmax(dim=1)]
