"""Images for the CNN lessons: a narrow torchvision ResNet, uint8 arrays → tensors with augmentation,
ImageNet backbones as transfer models, and two looks inside a CNN (feature maps, Grad-CAM).
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.models.resnet import BasicBlock, ResNet

from transfer_utils.freezing import Stages, batchnorm_in_eval, keep_frozen_batchnorm_in_eval
from transfer_utils.training import History, Step, StepOutput, fit, make_loader, predict, supervised_step

FASHION_MEAN, FASHION_STD = 72.9, 90.0  # Fashion-MNIST training pixels (0-255): mean and standard deviation
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

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled feature vector (everything but ``fc``): (N, C, H, W) → (N, 8·width)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def stages(self) -> Stages:
        """The network from input to output in the pieces that freezing schedules work with."""
        return [("stem", nn.ModuleList([self.conv1, self.bn1]))] + \
            [(name, getattr(self, name)) for name in BLOCK_NAMES] + [("head", self.fc)]

    def train(self, mode: bool = True) -> "SmallResNet":
        """Like ``nn.Module.train``, but batch-norm layers whose parameters are frozen stay in eval mode."""
        super().train(mode)
        keep_frozen_batchnorm_in_eval(self)
        return self


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


class SharedEncoder(nn.Module):
    """One encoder, one head per task (hard parameter sharing): ``forward(x, task)``."""

    def __init__(self, encoder: SmallResNet, heads: dict[str, nn.Module]):
        super().__init__()
        self.encoder, self.heads = encoder, nn.ModuleDict(heads)

    def forward(self, x: torch.Tensor, task: str) -> torch.Tensor:
        return self.heads[task](self.encoder.features(x))

    def for_task(self, task: str) -> nn.Module:
        """A view of the network that answers one task (for ``training.evaluate``)."""
        return _TaskView(self, task)


class _TaskView(nn.Module):
    """``SharedEncoder`` restricted to one task."""

    def __init__(self, shared: SharedEncoder, task: str):
        super().__init__()
        self.shared, self.task = shared, task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(x, self.task)


def joint_step(model: SharedEncoder, batch: tuple) -> StepOutput:
    """A ``training.fit`` step for two tasks at once: ``((x_a, y_a), (x_b, y_b))``, loss = sum of both.

    Both batches go through the encoder together, so batch norm sees (and remembers) the mixture of
    the two tasks' images that it will later be evaluated on. The logits and targets reported (for
    training accuracy) are those of the second task.
    """
    (xa, ya), (xb, yb) = batch
    task_a, task_b = list(model.heads)
    features = model.encoder.features(torch.cat([xa, xb]))
    loss_a = nn.functional.cross_entropy(model.heads[task_a](features[:len(xa)]), ya)
    logits_b = model.heads[task_b](features[len(xa):])
    loss_b = nn.functional.cross_entropy(logits_b, yb)
    return StepOutput(loss_a + loss_b, logits_b, yb, {f"{task_a}_loss": loss_a.item(), f"{task_b}_loss": loss_b.item()})


class PairedLoader:
    """Batches of two loaders side by side; the second restarts whenever it runs out."""

    def __init__(self, first: DataLoader, second: DataLoader):
        self.first, self.second = first, second

    def __len__(self) -> int:
        return len(self.first)

    def __iter__(self):
        other = iter(self.second)
        for batch in self.first:
            try:
                paired = next(other)
            except StopIteration:
                other = iter(self.second)
                paired = next(other)
            yield batch, paired


# --- image tensors and loaders ------------------------------------------------------------------

def grey_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 grey images (N, H, W) → float tensor (N, 1, H, W) scaled with Fashion-MNIST's statistics."""
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 grey images of shape (N, H, W), got {images.dtype} {images.shape}")
    return (torch.from_numpy(images.copy()).float().unsqueeze(1) - FASHION_MEAN) / FASHION_STD


def augmentation(size: int, pad: int = 2, flip: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """torchvision transforms for one (C, H, W) image: shift by up to ``pad`` pixels, mirror left-right."""
    from torchvision.transforms import v2

    steps: list[nn.Module] = [v2.RandomCrop(size, padding=pad, padding_mode="edge")]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


class ImageDataset(Dataset):
    """Image tensors and labels; an optional transform (augmentation) is applied to each image."""

    def __init__(self, images: torch.Tensor, labels: np.ndarray | torch.Tensor,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, torch.as_tensor(np.asarray(labels), dtype=torch.long)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[i]
        return (self.transform(image) if self.transform else image), self.labels[i]


def image_loader(images: torch.Tensor, labels: np.ndarray | torch.Tensor, batch_size: int = 64, *,
                 augment: bool = False, shuffle: bool = False, seed: int = 0, pad: int = 2,
                 flip: bool = True) -> DataLoader:
    """A seeded DataLoader over image tensors, with random shifts and flips when ``augment``."""
    transform = augmentation(images.shape[-1], pad, flip) if augment else None
    return make_loader(ImageDataset(images, labels, transform), batch_size, shuffle=shuffle, seed=seed)


def train_steps(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, steps: int, *,
                step: Step = supervised_step, scheduler: object = None) -> History:
    """Train for exactly ``steps`` optimizer steps (as many passes over ``loader`` as that takes)."""
    epochs = -(-steps // len(loader))  # ceiling division
    return fit(model, loader, optimizer, epochs=epochs, max_steps=steps, step=step, scheduler=scheduler,
               progress=False)


# --- ImageNet backbones as transfer models ------------------------------------------------------

class TransferNet(nn.Module):
    """A pretrained feature extractor (image → vector) followed by a new linear head.

    With ``frozen_bn_stats`` the batch-norm layers always normalise with their stored (pretrained)
    statistics, also while training: with a few small batches from a new domain, batch statistics
    are noisy and the running averages would drift away from what the pretrained weights expect.
    """

    def __init__(self, features: nn.Module, num_features: int, num_classes: int, frozen_bn_stats: bool = False):
        super().__init__()
        self.features = features
        self.head = nn.Linear(num_features, num_classes)
        self.frozen_bn_stats = frozen_bn_stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def train(self, mode: bool = True) -> "TransferNet":
        """``nn.Module.train``, keeping batch norm in eval mode when ``frozen_bn_stats``."""
        super().train(mode)
        if self.frozen_bn_stats:
            batchnorm_in_eval(self)
        return self


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


def center_square(image: np.ndarray) -> np.ndarray:
    """The largest centred square of an (H, W, ...) image, so resizing keeps its proportions."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def square_photo(image: np.ndarray, size: int) -> np.ndarray:
    """An RGB uint8 photo (H, W, 3) cut to its central square and resized to (size, size, 3), uint8."""
    x = torch.from_numpy(np.ascontiguousarray(center_square(image))).permute(2, 0, 1)[None].float()
    x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def extract_features(features: nn.Module, images: torch.Tensor, batch_size: int = 128) -> np.ndarray:
    """Pooled features of a frozen extractor, in eval mode, as a float32 array (N, D)."""
    return predict(features, make_loader((images,), batch_size)).numpy()


# --- looking inside -------------------------------------------------------------------------------

@torch.no_grad()
def feature_maps(model: nn.Module, layer: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The output of ``layer`` (N, C, H, W) when ``model`` (in eval mode) sees ``images``."""
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(output.detach()))
    was_training = model.training
    try:
        model.eval()
        model(images)
    finally:
        handle.remove()
        model.train(was_training)
    return captured[0]


def grad_cam(model: nn.Module, layer: nn.Module, images: torch.Tensor,
             classes: Sequence[int] | torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM heat maps (N, H, W) in [0, 1] at the input size, and the classes they explain.

    For each image: weight the channels of ``layer``'s output by the mean gradient of the class score
    with respect to them, sum, keep the positive part (Selvaraju et al., 2017). ``classes`` defaults to
    the predicted class.
    """
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(output))
    was_training = model.training
    try:
        model.eval()
        with torch.enable_grad():
            logits = model(images.clone().requires_grad_(True))  # a graph even when weights are frozen
            chosen = logits.argmax(dim=1) if classes is None else torch.as_tensor(classes).to(logits.device)
            score = logits.gather(1, chosen.view(-1, 1)).sum()
            activation = captured[0]
            gradient, = torch.autograd.grad(score, activation)
    finally:
        handle.remove()
        model.train(was_training)
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * activation).sum(dim=1, keepdim=True)).detach()
    cam = nn.functional.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp(min=1e-12).view(-1, 1, 1)
    return cam / peak, chosen
