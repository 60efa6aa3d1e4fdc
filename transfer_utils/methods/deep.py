"""Deep domain adaptation: a gradient-reversal layer, the small digit CNN, DANN, Deep CORAL and deep MMD.

Every method trains the same :class:`DigitCNN` with ``transfer_utils.training.fit`` through a ``step``
function. The training batches come from ``data.loaders.PairedLoader(source, target, carry_over=True)``:
a labelled source batch ``(x, y)`` together with a target batch whose labels, if any, are dropped.
Evaluation batches are plain ``(x, y)``, scored by ``fit``'s plain cross-entropy ``eval_step``.

    source_only_step   cross-entropy on the source batch only (the baseline; the oracle uses it on
                       labelled target data)
    DANNStep           L = L_task + L_domain, the domain head reached through gradient reversal with
                       weight λ_p = 2 / (1 + exp(−10 p)) − 1 (Ganin et al., 2016)
    DeepCORALStep      L = L_task + w · deep_coral_loss(source, target outputs) (Sun & Saenko, 2016);
                       not ``methods.feature.CORAL``, which re-colours fixed features in closed form
    DeepMMDStep        L = L_task + w · mmd_loss(source, target outputs) (Long et al., 2015)

Lessons: 05.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from transfer_utils.training import StepOutput, supervised_step

DomainBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (x_source, y_source, x_target)


# --- gradient reversal -------------------------------------------------------------------------

class _GradReverse(torch.autograd.Function):
    """Identity on the way forward; multiplies the gradient by −λ on the way back."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lambda_: float) -> torch.Tensor:
        ctx.lambda_ = lambda_
        return x.view_as(x)  # a new tensor object, so autograd records this node

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.lambda_ * grad_output, None  # no gradient for λ itself


def grad_reverse(x: torch.Tensor, lambda_: float = 1.0) -> torch.Tensor:
    """Return ``x`` unchanged, but make the gradient flowing back through it ``−lambda_`` times as large."""
    if not isinstance(lambda_, (int, float)) or isinstance(lambda_, bool) or lambda_ < 0:
        raise ValueError(f"lambda_ must be a number >= 0 (a python float), got {lambda_!r}")
    return _GradReverse.apply(x, float(lambda_))


# --- the DANN paper's schedules ------------------------------------------------------------------

def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """Adaptation weight λ_p = 2 / (1 + exp(−γ p)) − 1: 0 at the start, close to 1 at the end."""
    _check_progress(progress)
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


def dann_lr_factor(progress: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """Learning-rate multiplier 1 / (1 + α p)^β, so that μ_p = μ0 / (1 + 10 p)^0.75."""
    _check_progress(progress)
    return 1.0 / (1.0 + alpha * progress) ** beta


def _check_progress(progress: float) -> None:
    """Training progress p must lie in [0, 1]."""
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress p must be in [0, 1] (steps done / total steps), got {progress}")


def dann_sgd(model: nn.Module, total_steps: int, lr: float = 0.01, momentum: float = 0.9,
             weight_decay: float = 0.0) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """SGD with momentum and the DANN paper's learning-rate decay over ``total_steps`` steps."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: dann_lr_factor(min(step, total_steps) / total_steps))
    return optimizer, scheduler


# --- data: source and target batches together ----------------------------------------------------

def _training_batch(batch: Any) -> DomainBatch:
    """``(x_source, y_source, x_target)`` from a ``PairedLoader`` batch ``((x_s, y_s), target)``, or a clear error."""
    if isinstance(batch, (list, tuple)) and len(batch) == 2 and all(isinstance(b, (list, tuple)) for b in batch):
        (xs, ys, *_), target = batch
        xt = target[0] if isinstance(target, (list, tuple)) else target  # target labels, if any, are dropped
        return xs, ys, xt
    if isinstance(batch, (list, tuple)) and len(batch) == 3:
        return batch[0], batch[1], batch[2]
    raise ValueError("expected a training batch ((x_source, y_source), (x_target,)): "
                     "use loaders.PairedLoader(source, target, carry_over=True)")


# --- the model -----------------------------------------------------------------------------------

class DigitCNN(nn.Module):
    """The small digit CNN every method of lesson 05 trains (the DANN paper's digit network).

    A label head and a domain head sit on the same features; only DANN trains the domain head.

    ``forward(x)`` returns class logits (so ``training.evaluate`` / ``predict`` work as for any
    classifier); ``features(x)`` gives the shared representation; ``domain_logits(features, λ)``
    passes it through gradient reversal into the domain classifier (one logit: target vs source).
    ``batch_norm=True`` adds BatchNorm after every hidden layer; it is off by default because its
    statistics then mix the two domains (see lesson 05).
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 10, image_size: int = 28,
                 channels: tuple[int, int] = (32, 48), hidden: int = 100, padding: int = 0,
                 batch_norm: bool = False) -> None:
        super().__init__()
        c1, c2 = channels
        norm2d = nn.BatchNorm2d if batch_norm else (lambda c: nn.Identity())
        norm1d = nn.BatchNorm1d if batch_norm else (lambda c: nn.Identity())
        self.features = nn.Sequential(
            # max-pooling before ReLU gives the same result (both are monotone) on 4× fewer values
            nn.Conv2d(in_channels, c1, 5, padding=padding), norm2d(c1), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(c1, c2, 5, padding=padding), norm2d(c2), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten())
        with torch.no_grad():  # the flattened size depends on image size and padding
            dim = self.features(torch.zeros(2, in_channels, image_size, image_size)).shape[1]
        self.feature_dim = dim

        def head(n_out: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(dim, hidden), norm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), norm1d(hidden), nn.ReLU(), nn.Linear(hidden, n_out))

        self.classifier = head(n_classes)
        self.domain_head = head(1)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                # He initialisation: without BatchNorm, PyTorch's default init shrinks the signal layer
                # by layer and training sits on a plateau for hundreds of steps before it starts.
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        # CPU convolutions (oneDNN) run faster with channels-last weights (bench/cnn_layout.py); the layout
        # survives deepcopy, .to() and load_state_dict, and the outputs are the same up to round-off
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def domain_logits(self, features: torch.Tensor, lambda_: float) -> torch.Tensor:
        """Domain logits (> 0 means "target"), with the gradient into ``features`` reversed and scaled."""
        return self.domain_head(grad_reverse(features, lambda_)).squeeze(-1)


# --- losses --------------------------------------------------------------------------------------

def _check_features(source: torch.Tensor, target: torch.Tensor) -> None:
    """Both feature batches must be 2-D with the same width and at least two rows."""
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(f"expected features (n, d) and (m, d), got {tuple(source.shape)} and {tuple(target.shape)}")
    if len(source) < 2 or len(target) < 2:
        raise ValueError("need at least two rows per domain to estimate statistics")


def deep_coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Deep CORAL: ‖C_s − C_t‖²_F / (4 d²), with C the (unbiased) covariance of each feature batch."""
    _check_features(source, target)
    d = source.shape[1]
    diff = torch.cov(source.T) - torch.cov(target.T)
    return (diff * diff).sum() / (4 * d * d)


def mmd_loss(source: torch.Tensor, target: torch.Tensor, bandwidths: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0),
             ) -> torch.Tensor:
    """Squared MMD (biased estimate) with a sum of Gaussian kernels; widths are multiples of the mean distance."""
    _check_features(source, target)
    both = torch.cat([source, target])
    # Squared distances from dot products: torch.cdist has no usable gradient at distance 0 (the diagonal).
    sq_norms = (both * both).sum(dim=1)
    dist2 = (sq_norms[:, None] + sq_norms[None, :] - 2 * both @ both.T).clamp_min(0)
    scale = dist2.detach().mean().clamp_min(1e-12)  # kernel widths follow the data's own scale
    kernel = sum(torch.exp(-dist2 / (scale * b)) for b in bandwidths)
    n = len(source)
    return kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()


# --- steps for training.fit ----------------------------------------------------------------------

def source_only_step(model: nn.Module, batch: Any) -> StepOutput:
    """Cross-entropy on the labelled source batch; the target batch, if any, is ignored."""
    xs, ys, _ = _training_batch(batch)
    return supervised_step(model, (xs, ys))


class DANNStep:
    """Domain-adversarial step. Call it as ``fit(..., step=DANNStep(total_steps))``.

    The loss value is L_task + L_domain. Through the gradient-reversal layer the feature extractor
    receives ∇L_task − λ_p ∇L_domain (it learns to *confuse* the domain head) while the domain head
    receives ∇L_domain (it learns to tell the domains apart): the saddle point of the DANN paper's
    E = L_task − λ L_domain. ``λ_p`` follows :func:`dann_lambda` with p = steps done / ``total_steps``.
    """

    def __init__(self, total_steps: int, gamma: float = 10.0, lambda_max: float = 1.0) -> None:
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.total_steps, self.gamma, self.lambda_max = total_steps, gamma, lambda_max
        self.steps_done = 0

    def state_dict(self) -> dict[str, int]:
        """What a resumed run needs (``fit`` saves it in its checkpoints): the steps done so far."""
        return {"steps_done": self.steps_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a saved ``state_dict``."""
        self.steps_done = int(state["steps_done"])

    def current_lambda(self) -> float:
        """λ for the next training step."""
        return self.lambda_max * dann_lambda(min(self.steps_done, self.total_steps) / self.total_steps, self.gamma)

    def __call__(self, model: nn.Module, batch: Any) -> StepOutput:
        xs, ys, xt = _training_batch(batch)
        lambda_ = self.current_lambda()
        features = model.features(torch.cat([xs, xt]))  # both domains in one pass through the shared layers
        logits = model.classifier(features[:len(xs)])  # the task loss only sees labelled source examples
        task = F.cross_entropy(logits, ys)
        domain_logits = model.domain_logits(features, lambda_)
        is_target = torch.cat([torch.zeros(len(xs)), torch.ones(len(xt))]).to(domain_logits)
        domain = F.binary_cross_entropy_with_logits(domain_logits, is_target)
        if model.training:
            self.steps_done += 1
        domain_acc = ((domain_logits > 0).float() == is_target).float().mean().item()
        return StepOutput(task + domain, logits, ys,
                          logs={"task_loss": task.item(), "domain_loss": domain.item(),
                                "domain_accuracy": domain_acc, "lambda": lambda_})


class _AlignmentStep:
    """Statistic-matching step: L = L_task + weight · D(f_source, f_target), with D the class's ``distance``.

    ``on`` picks the outputs that are aligned: ``"features"`` (the shared representation) or
    ``"logits"`` (the label head's output, as in the Deep CORAL paper).
    """

    name = ""
    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    def __init__(self, weight: float = 1.0, on: str = "logits") -> None:
        if on not in ("features", "logits"):
            raise ValueError(f"on must be 'features' or 'logits', got {on!r}")
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        self.weight, self.on = weight, on

    def __call__(self, model: nn.Module, batch: Any) -> StepOutput:
        xs, ys, xt = _training_batch(batch)
        features = model.features(torch.cat([xs, xt]))
        logits_all = model.classifier(features)
        logits = logits_all[:len(xs)]
        aligned = logits_all if self.on == "logits" else features
        task = F.cross_entropy(logits, ys)
        distance = self.distance(aligned[:len(xs)], aligned[len(xs):])
        return StepOutput(task + self.weight * distance, logits, ys,
                          logs={"task_loss": task.item(), self.name: distance.item()})


class DeepCORALStep(_AlignmentStep):
    """Deep CORAL: L = L_task + weight · ``deep_coral_loss`` of the source and target outputs."""

    name = "deep_coral_loss"
    distance = staticmethod(deep_coral_loss)


class DeepMMDStep(_AlignmentStep):
    """Deep MMD: L = L_task + weight · ``mmd_loss`` of the source and target outputs."""

    name = "mmd_loss"
    distance = staticmethod(mmd_loss)
