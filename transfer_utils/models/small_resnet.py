"""A narrow torchvision ResNet for 28×28 grey images, new heads for new tasks, and an ImageNet
feature extractor with a new head (lessons 04 and 08).

Lessons: 04, 08.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from transfer_utils.models.parts import Stages
from transfer_utils.training import freeze_batchnorm_stats


BLOCK_NAMES = ("layer1", "layer2", "layer3", "layer4")


class SmallResNet(ResNet):
    """torchvision's ResNet with BasicBlocks, narrow widths and a stem for 28×28 grey images.

    ImageNet's stem (7×7 stride-2 convolution, then max-pooling) would shrink a 28×28 image to 7×7
    before the first block; here the stem is a 3×3 stride-1 convolution, so the four blocks see
    28, 14, 7 and 4 pixels. Everything else (blocks, ``forward``) is torchvision's own code.
    """

    def __init__(self, num_classes: int = 10, width: int = 16, layers: Sequence[int] = (1, 1, 1, 1),
                 in_channels: int = 1):
        nn.Module.__init__(self)  # ResNet.__init__ hard-codes ImageNet widths; we set the same attributes
        if width < 1 or len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"need width >= 1 and four block counts >= 1, got width={width}, layers={layers}")
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(BasicBlock, width, layers[0])
        self.layer2 = self._make_layer(BasicBlock, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(BasicBlock, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(BasicBlock, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, num_classes)
        self.num_features = 8 * width
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # CPU convolutions (oneDNN) run faster with channels-last weights (bench/cnn_layout.py: 1.07-1.14x per
        # training step, 1.06-1.30x per evaluated image on the CPUs measured); the layout survives deepcopy,
        # .to() and load_state_dict
        self.to(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled feature vector (everything but ``fc``): (N, C, H, W) → (N, 8·width)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def stages(self) -> Stages:
        """The network from input to output in the pieces that freezing schedules work with."""
        return [("stem", nn.ModuleList([self.conv1, self.bn1]))] + \
            [(name, getattr(self, name)) for name in BLOCK_NAMES] + [("head", self.fc)]


def new_head(model: SmallResNet, num_classes: int, seed: int) -> nn.Linear:
    """Replace ``model.fc`` by a freshly initialised linear layer for a new task; return the old one."""
    old = model.fc
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model.fc = nn.Linear(model.num_features, num_classes).to(old.weight.device)
    return old


class WithHead(nn.Module):
    """``model``'s feature extractor with another head (shares the weights): e.g. the old source head."""

    def __init__(self, model: SmallResNet, head: nn.Module):
        super().__init__()
        self.model, self.head = model, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.model.features(x))


class TransferNet(nn.Module):
    """A pretrained feature extractor (image → vector) followed by a new linear head.

    With ``frozen_bn_stats`` the batch-norm layers always normalise with their stored (pretrained)
    statistics, also while training: with a few small batches from a new domain, batch statistics
    are noisy and the running averages would drift away from what the pretrained weights expect.
    (They are marked with ``training.freeze_batchnorm_stats``; ``training.fit`` / ``train_mode`` honour it.)
    """

    def __init__(self, features: nn.Module, num_features: int, num_classes: int, frozen_bn_stats: bool = False):
        super().__init__()
        self.features = features
        self.head = nn.Linear(num_features, num_classes)
        if frozen_bn_stats:
            freeze_batchnorm_stats(self)
        # EfficientNet-Lite0 trains 1.17x and evaluates 1.61x as fast with channels-last weights on CPU
        # (bench/cnn_layout.py); outputs are the same up to round-off
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def reinitialised(module: nn.Module, seed: int) -> nn.Module:
    """A copy of ``module`` with the same architecture and fresh random weights (for from-scratch runs)."""
    fresh = copy.deepcopy(module)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for m in fresh.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()  # convolutions, linear and batch-norm layers (running stats too)
    return fresh


def set_batchnorm_momentum(model: nn.Module, momentum: float) -> nn.Module:
    """Set every batch-norm layer's running-statistics momentum (EfficientNet ships a slow 0.01)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum
    return model

