"""Looking inside a CNN: the feature maps of a layer, and Grad-CAM heat maps (lesson 08).

Lessons: 08.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from transfer_utils.training import eval_mode


# --- looking inside -------------------------------------------------------------------------------

@torch.no_grad()
def feature_maps(model: nn.Module, layer: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The output of ``layer`` (N, C, H, W) when ``model`` (in eval mode) sees ``images``."""
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(output.detach()))
    try:
        with eval_mode(model):
            model(images)
    finally:
        handle.remove()
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
    try:
        with eval_mode(model), torch.enable_grad():
            logits = model(images.clone().requires_grad_(True))  # a graph even when weights are frozen
            chosen = logits.argmax(dim=1) if classes is None else torch.as_tensor(classes).to(logits.device)
            score = logits.gather(1, chosen.view(-1, 1)).sum()
            activation = captured[0]
            gradient, = torch.autograd.grad(score, activation)
    finally:
        handle.remove()
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * activation).sum(dim=1, keepdim=True)).detach()
    cam = nn.functional.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp(min=1e-12).view(-1, 1, 1)
    return cam / peak, chosen
