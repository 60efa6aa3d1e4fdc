"""Distillation losses against autograd, torch's own losses and loop-by-loop references."""

import math

import pytest
import torch
from torch.nn import functional as F

from transfer_utils.methods.distillation import (DistillationStep, bce_with_logits_grad, kd_loss, kd_loss_grad,
                                                 rkd_angle_loss, rkd_distance_loss, soft_targets)


def _logits(rows: int = 6, classes: int = 4, scale: float = 2.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, classes, generator=generator, dtype=torch.float64) * scale,
            torch.randn(rows, classes, generator=generator, dtype=torch.float64) * scale)


def _autograd(loss_fn, z: torch.Tensor) -> torch.Tensor:
    z = z.clone().requires_grad_(True)
    return torch.autograd.grad(loss_fn(z), z)[0]


@pytest.mark.parametrize("temperature", [1.0, 2.0, 5.0, 20.0])
def test_kd_gradient_matches_autograd(temperature):
    s, t = _logits()
    by_hand = kd_loss_grad(s, t, temperature)
    assert torch.allclose(_autograd(lambda z: kd_loss(z, t, temperature), s), by_hand, atol=1e-12)


def test_kd_is_soft_cross_entropy_minus_teacher_entropy():
    s, t = _logits(seed=1)
    T = 3.0
    p_t = soft_targets(t, T)
    cross_entropy = F.cross_entropy(s / T, p_t)  # torch's CE with probability targets
    entropy = -(p_t * p_t.log()).sum(dim=1).mean()
    assert torch.allclose(kd_loss(s, t, T), T ** 2 * (cross_entropy - entropy), atol=1e-12)
    # same gradient for the student: the teacher's entropy does not depend on the student
    ce_grad = _autograd(lambda z: T ** 2 * F.cross_entropy(z / T, p_t), s)
    assert torch.allclose(ce_grad, kd_loss_grad(s, t, T), atol=1e-12)


def test_kd_is_zero_at_agreement_and_ignores_a_constant_shift():
    s, t = _logits(seed=2)
    assert kd_loss(t + 5.0, t, 2.0).abs() < 1e-12
    assert torch.allclose(kd_loss(s + 3.0, t - 1.0, 2.0), kd_loss(s, t, 2.0), atol=1e-12)
    assert kd_loss(s, t, 2.0) > 0.01


def test_t_squared_keeps_the_gradient_scale_and_the_limit_is_logit_matching():
    s, t = _logits(scale=1.0, seed=3)
    norms = {T: float(kd_loss_grad(s, t, T).norm()) for T in (4.0, 8.0, 16.0, 32.0)}
    without = {T: norms[T] / T ** 2 for T in norms}  # KL alone, no T² factor
    assert without[8.0] / without[32.0] == pytest.approx(16.0, rel=0.05)  # falls like 1 / T²
    assert norms[8.0] / norms[32.0] == pytest.approx(1.0, rel=0.05)  # with T²: about constant
    # high-temperature limit: gradient → ((s − mean s) − (t − mean t)) / (C · B), plain logit matching
    classes, rows = s.shape[1], s.shape[0]
    centred = (s - s.mean(1, keepdim=True)) - (t - t.mean(1, keepdim=True))
    assert torch.allclose(kd_loss_grad(s, t, 1e4), centred / (classes * rows), atol=1e-5)
    assert not torch.allclose(kd_loss_grad(s, t, 1.0), centred / (classes * rows), atol=1e-3)


def test_bce_gradient_matches_autograd_even_for_extreme_logits():
    generator = torch.Generator().manual_seed(0)
    z = torch.cat([torch.randn(20, 3, generator=generator, dtype=torch.float64) * 4,
                   torch.tensor([[40.0, -40.0, 0.0]], dtype=torch.float64)])
    y = (torch.rand(21, 3, generator=generator) > 0.5).double()
    reference = _autograd(lambda v: F.binary_cross_entropy_with_logits(v, y), z)
    assert torch.allclose(bce_with_logits_grad(z, y), reference, atol=1e-15)


def _rotation(dim: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


@pytest.mark.parametrize("loss", [rkd_distance_loss, rkd_angle_loss])
def test_rkd_is_zero_for_a_similar_copy_and_invariant_to_scale_shift_rotation(loss):
    generator = torch.Generator().manual_seed(4)
    teacher = torch.randn(10, 6, generator=generator, dtype=torch.float64)
    student = torch.randn(10, 6, generator=generator, dtype=torch.float64)
    similar = 3.0 * teacher @ _rotation(6, 1) + 7.0  # same shape of cloud: scaled, rotated, shifted
    assert loss(similar, teacher) < 1e-12
    base = loss(student, teacher)
    assert base > 1e-3
    assert torch.allclose(loss(0.1 * student @ _rotation(6, 2) - 2.0, teacher), base, atol=1e-10)
    assert torch.allclose(loss(student, 5.0 * teacher + 1.0), base, atol=1e-10)


def test_rkd_accepts_different_widths_and_only_the_student_gets_gradients():
    generator = torch.Generator().manual_seed(5)
    teacher = torch.randn(8, 12, generator=generator, requires_grad=True)
    student = torch.randn(8, 3, generator=generator, requires_grad=True)
    (rkd_distance_loss(student, teacher) + rkd_angle_loss(student, teacher)).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None
    with pytest.raises(ValueError, match="same examples"):
        rkd_distance_loss(student[:5], teacher)


def test_rkd_matches_loop_references():
    generator = torch.Generator().manual_seed(6)
    s = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    t = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    n = len(s)

    def distances(e):
        d = [[float((e[i] - e[j]).norm()) for j in range(n)] for i in range(n)]
        mean = sum(d[i][j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        return [d[i][j] / mean for i in range(n) for j in range(n) if i != j]

    def huber(a, b):
        return sum(0.5 * (x - y) ** 2 if abs(x - y) < 1 else abs(x - y) - 0.5 for x, y in zip(a, b)) / len(a)

    def cosines(e):
        out = []
        for i in range(n):
            for j in range(n):
                for k in range(n):
                    u, v = e[i] - e[j], e[k] - e[j]
                    nu, nv = max(float(u.norm()), 1e-12), max(float(v.norm()), 1e-12)
                    out.append(float(u @ v) / (nu * nv))
        return out

    assert float(rkd_distance_loss(s, t)) == pytest.approx(huber(distances(s), distances(t)), abs=1e-12)
    assert float(rkd_angle_loss(s, t)) == pytest.approx(huber(cosines(s), cosines(t)), abs=1e-12)


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.head = torch.nn.Linear(4, 3), torch.nn.Linear(3, 2)

    def features(self, x):
        return torch.tanh(self.body(x))

    def forward(self, x):
        return self.head(self.features(x))


def test_distillation_step_adds_the_weighted_terms():
    torch.manual_seed(0)
    model = _Tiny()
    x_gold, y_gold = torch.randn(6, 4), torch.tensor([0, 1, 1, 0, 1, 0])
    x_transfer, t_logits, t_emb = torch.randn(8, 4), torch.randn(8, 2), torch.randn(8, 5)
    batch = ((x_gold, y_gold), (x_transfer, t_logits, t_emb))
    gold = F.cross_entropy(model(x_gold), y_gold)
    assert torch.allclose(DistillationStep()(model, batch).loss, gold)  # no transfer weights: plain CE
    step = DistillationStep(temperature=3.0, w_gold=0.5, w_kd=2.0, w_distance=4.0, w_angle=8.0, angle_rows=5)
    out = step(model, batch)
    emb = model.features(x_transfer)
    expected = (0.5 * gold + 2.0 * kd_loss(model.head(emb), t_logits, 3.0) + 4.0 * rkd_distance_loss(emb, t_emb)
                + 8.0 * rkd_angle_loss(emb[:5], t_emb[:5]))
    assert torch.allclose(out.loss, expected)
    assert set(out.logs) == {"gold_ce", "kd", "rkd_distance", "rkd_angle"} and math.isfinite(out.logs["kd"])
    assert torch.equal(out.targets, y_gold)


def test_rkd_angle_survives_duplicate_examples():
    generator = torch.Generator().manual_seed(7)
    student = torch.randn(6, 4, generator=generator)
    student = torch.cat([student, student[:2]]).requires_grad_(True)  # two examples appear twice
    teacher = torch.randn(8, 9, generator=generator)
    loss = rkd_angle_loss(student, teacher) + rkd_distance_loss(student, teacher)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()
