"""Images as tensors for the CNN lessons: uint8 arrays → scaled tensors, augmentation, seeded loaders,
and photos cut square for an ImageNet network (lessons 04, 05, 08).

Lessons: 04, 08.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from transfer_utils.data.loaders import make_loader


FASHION_MEAN, FASHION_STD = 72.9, 90.0  # Fashion-MNIST training pixels (0-255): mean and standard deviation


def grey_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 grey images (N, H, W) → float tensor (N, 1, H, W) scaled with Fashion-MNIST's statistics."""
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 grey images of shape (N, H, W), got {images.dtype} {images.shape}")
    return (torch.from_numpy(images.copy()).float().unsqueeze(1) - FASHION_MEAN) / FASHION_STD


def shift_and_flip(images: torch.Tensor, pad: int = 2, flip: bool = True) -> torch.Tensor:
    """Each image of a batch (N, C, H, W) shifted by up to ``pad`` pixels (edge pixels repeated into the
    gap) and, with ``flip``, mirrored left-right with probability 1/2; draws from torch's global RNG."""
    n, c, h, w = images.shape
    padded = nn.functional.pad(images, (pad,) * 4, mode="replicate")
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n))  # each image's own offset into the padded batch
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    shifted = padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]
    if not flip:
        return shifted
    mirrored = torch.rand(n) < 0.5
    return torch.where(mirrored[:, None, None, None], shifted.flip(-1), shifted)


def augmenting_collate(pad: int = 2, flip: bool = True) -> Callable[[list], list[torch.Tensor]]:
    """A DataLoader ``collate_fn`` that stacks a batch and augments it with ``shift_and_flip``."""

    def collate(items: list) -> list[torch.Tensor]:
        images, labels = default_collate(items)
        return [shift_and_flip(images, pad, flip), labels]

    return collate


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
    """A seeded DataLoader over image tensors, with random shifts and flips when ``augment``.

    The batch is augmented at once: torchvision's per-image transforms cost about a sixth of a training
    step of lesson 04's ResNet per batch (bench/cnn_layout.py measures both)."""
    collate = augmenting_collate(pad, flip) if augment else None
    return make_loader(ImageDataset(images, labels), batch_size, shuffle=shuffle, seed=seed, collate_fn=collate)


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

