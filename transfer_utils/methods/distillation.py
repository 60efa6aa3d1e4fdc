"""Knowledge distillation: a small student learns from a large teacher's soft targets and relations.

    soft_targets         softmax(logits / T): a teacher's class probabilities, softened by temperature T
    kd_loss              T² · KL(p_teacher^T ‖ p_student^T), batch mean (Hinton, Vinyals & Dean, 2015)
    kd_loss_grad         its gradient with respect to the student's logits, in closed form: T (p_s − p_t) / B
    bce_with_logits_grad the gradient of binary cross-entropy with logits, in closed form: (σ(z) − y) / N
    rkd_distance_loss    relational KD: the student's pairwise distances match the teacher's, each set divided
                         by its mean (Park, Kim, Lu & Cho, 2019)
    rkd_angle_loss       relational KD: the angles every triplet of examples makes match the teacher's
    DistillationStep     a ``training.fit`` step: w_gold · CE on gold labels + w_kd · kd_loss + RKD terms on a
                         batch of the unlabelled transfer set that the teacher has scored

Lessons: 09.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from transfer_utils.training import StepOutput


def soft_targets(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Class probabilities softened by ``temperature``: softmax(logits / T) over the last dimension."""
    return torch.softmax(logits / temperature, dim=-1)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(softmax(t / T) ‖ softmax(s / T)), averaged over the batch; zero when the logits agree."""
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    kl = F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)
    return temperature ** 2 * kl


def kd_loss_grad(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """d kd_loss / d student_logits = T · (softmax(s / T) − softmax(t / T)) / B, without autograd."""
    diff = soft_targets(student_logits, temperature) - soft_targets(teacher_logits, temperature)
    return temperature * diff / student_logits.shape[0]


def bce_with_logits_grad(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """d mean BCE-with-logits / d logits = (σ(z) − y) / N, without autograd (N = number of entries)."""
    return (torch.sigmoid(logits) - targets.to(logits.dtype)) / logits.numel()


def _normalized_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances (B, B), divided by the mean over distinct pairs."""
    distances = torch.cdist(embeddings, embeddings)
    off_diagonal = ~torch.eye(len(embeddings), dtype=torch.bool, device=embeddings.device)
    return distances / distances[off_diagonal].mean().clamp(min=1e-12)


def rkd_distance_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Huber loss between the student's and teacher's pairwise distances, each divided by its mean.

    Both are (B, d_s) and (B, d_t) embeddings of the same B examples; the widths may differ. The loss is
    unchanged when either set is scaled, shifted or rotated: only the *shape* of the cloud is transferred.
    """
    if len(student) != len(teacher):
        raise ValueError(f"student has {len(student)} rows, teacher {len(teacher)}: embed the same examples")
    with torch.no_grad():
        target = _normalized_distances(teacher.detach())
    off_diagonal = ~torch.eye(len(student), dtype=torch.bool, device=student.device)
    return F.smooth_l1_loss(_normalized_distances(student)[off_diagonal], target[off_diagonal])


def _triplet_cosines(embeddings: torch.Tensor) -> torch.Tensor:
    """cos of the angle at j between (e_i − e_j) and (e_k − e_j), for every triplet: (B, B, B) indexed [j, i, k].

    Computed from the Gram matrix G (B × B), never from the (B, B, d) differences:
    ⟨e_i − e_j, e_k − e_j⟩ = G_ik − G_ji − G_jk + G_jj. A triplet with i = j or k = j has no angle and gets 0.
    """
    centred = embeddings - embeddings.mean(dim=0)  # angles ignore a shift; centring keeps G's terms small
    gram = centred @ centred.T
    squared = gram.diagonal()
    # clamp before the square root: its gradient at 0 would be infinite (and NaN after masking)
    distance = (squared.unsqueeze(0) + squared.unsqueeze(1) - 2 * gram).clamp(min=1e-12).sqrt()
    inner = gram.unsqueeze(0) - gram.unsqueeze(2) - gram.unsqueeze(1) + squared.view(-1, 1, 1)
    lengths = distance.unsqueeze(2) * distance.unsqueeze(1)  # ‖e_i − e_j‖ · ‖e_k − e_j‖ at [j, i, k]
    scale = distance.max().detach().clamp(min=1e-12)
    real = (distance.unsqueeze(2) > 1e-4 * scale) & (distance.unsqueeze(1) > 1e-4 * scale)
    return torch.where(real, inner / lengths, torch.zeros_like(inner))


def rkd_angle_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Huber loss between the cosines of the angles every triplet of examples makes, student vs teacher."""
    if len(student) != len(teacher):
        raise ValueError(f"student has {len(student)} rows, teacher {len(teacher)}: embed the same examples")
    with torch.no_grad():
        target = _triplet_cosines(teacher.detach())
    return F.smooth_l1_loss(_triplet_cosines(student), target)


@dataclass
class DistillationStep:
    """One ``training.fit`` step on ``((x_gold, y_gold), (x_transfer, teacher_logits, teacher_embeddings))``.

    loss = w_gold · CE(student(x_gold), y_gold) + w_kd · kd_loss(student(x_transfer), teacher_logits, T)
           + w_distance · rkd_distance_loss + w_angle · rkd_angle_loss   (student embeddings vs teacher's)

    The student needs ``features(x)`` (its embedding) and ``head`` (embedding → logits). With all transfer
    weights 0 the transfer batch is skipped: that is the student trained on its gold labels alone. The angle
    term uses the first ``angle_rows`` rows of the (shuffled) transfer batch: its cost grows like rows³.
    """

    temperature: float = 2.0
    w_gold: float = 1.0
    w_kd: float = 0.0
    w_distance: float = 0.0
    w_angle: float = 0.0
    angle_rows: int = 32

    def __call__(self, model: nn.Module, batch: Any) -> StepOutput:
        (x_gold, y_gold), (x_transfer, teacher_logits, teacher_embeddings) = batch
        logits = model(x_gold)
        gold = F.cross_entropy(logits, y_gold)
        loss, logs = self.w_gold * gold, {"gold_ce": gold.item()}
        if self.w_kd or self.w_distance or self.w_angle:
            embedding = model.features(x_transfer)
            if self.w_kd:
                kd = kd_loss(model.head(embedding), teacher_logits, self.temperature)
                loss, logs["kd"] = loss + self.w_kd * kd, kd.item()
            if self.w_distance:
                distance = rkd_distance_loss(embedding, teacher_embeddings)
                loss, logs["rkd_distance"] = loss + self.w_distance * distance, distance.item()
            if self.w_angle:
                angle = rkd_angle_loss(embedding[:self.angle_rows], teacher_embeddings[:self.angle_rows])
                loss, logs["rkd_angle"] = loss + self.w_angle * angle, angle.item()
        return StepOutput(loss, logits, y_gold, logs)
