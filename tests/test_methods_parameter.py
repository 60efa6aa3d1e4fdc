"""Freezing, gradual unfreezing, layer-wise learning rates and L2-SP, checked by hand and against torch."""

import numpy as np
import pytest
import torch
from torch import nn

from transfer_utils.data import loaders
from transfer_utils.models import small_resnet
from transfer_utils.models.parts import count_parameters
from transfer_utils.methods import parameter
from transfer_utils import training


def small(seed=0):
    torch.manual_seed(seed)
    return small_resnet.SmallResNet(num_classes=5, width=8)


def batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 5, (n,), generator=g)


@pytest.mark.parametrize("n_frozen", [0, 1, 3, 5, 6])
def test_frozen_stages_get_no_gradient_and_do_not_move(n_frozen):
    model = small()
    stages = model.stages()
    names = parameter.freeze_stages(stages, n_frozen)
    assert names == [name for name, _ in stages[:n_frozen]]
    expected = sum(p.numel() for _, m in stages[n_frozen:] for p in m.parameters())
    assert count_parameters(model, trainable_only=True) == expected
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.1) if params else None
    x, y = batch()
    training.train_mode(model)
    loss = nn.functional.cross_entropy(model(x), y)
    if params:
        loss.backward()
        optimizer.step()
    for i, (_, module) in enumerate(stages):
        for p in module.parameters():
            assert (p.grad is None) == (i < n_frozen)
    state = model.state_dict()
    for name, module in stages[:n_frozen]:
        prefix = {"stem": ("conv1.", "bn1."), "head": ("fc.",)}.get(name, (name + ".",))
        for key in state:
            if key.startswith(prefix):  # weights and batch-norm running statistics alike
                assert torch.equal(state[key], before[key]), key


def test_unfrozen_batchnorm_still_tracks_statistics():
    model = small()
    parameter.freeze_stages(model.stages(), 2)  # stem and layer1 frozen
    mean_l1 = model.layer1[0].bn1.running_mean.clone()
    mean_l2 = model.layer2[0].bn1.running_mean.clone()
    training.train_mode(model)  # what fit calls at the start of every epoch
    model(batch()[0])
    assert torch.equal(model.layer1[0].bn1.running_mean, mean_l1)
    assert not torch.equal(model.layer2[0].bn1.running_mean, mean_l2)
    assert not model.layer1[0].bn1.training and model.layer2[0].bn1.training


def test_freeze_stages_rejects_out_of_range():
    with pytest.raises(ValueError, match="n_frozen=7"):
        parameter.freeze_stages(small().stages(), 7)


def test_unfreezing_plan():
    plan = parameter.unfreezing_plan(6, 100)
    assert [n for n, _ in plan] == [5, 4, 3, 2, 1, 0]
    assert sum(s for _, s in plan) == 100 and [s for _, s in plan] == [17, 17, 17, 17, 16, 16]
    assert parameter.unfreezing_plan(6, 9, last_frozen=3) == [(5, 3), (4, 3), (3, 3)]
    with pytest.raises(ValueError):
        parameter.unfreezing_plan(6, 3)  # fewer steps than phases


def test_layerwise_groups_cover_every_parameter_once_with_decaying_rates():
    model = small()
    groups = parameter.layerwise_param_groups(model.stages(), base_lr=0.1, decay=0.5, momentum=0.9)
    assert [g["name"] for g in groups] == ["head", "layer4", "layer3", "layer2", "layer1", "stem"]
    np.testing.assert_allclose([g["lr"] for g in groups], [0.1 * 0.5 ** d for d in range(6)])
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in model.parameters()}
    optimizer = torch.optim.SGD(groups, lr=1.0)  # the groups' own rates win over the default
    assert [g["lr"] for g in optimizer.param_groups] == [g["lr"] for g in groups]
    assert all(g["momentum"] == 0.9 for g in optimizer.param_groups)
    with pytest.raises(ValueError, match="decay=2"):
        parameter.layerwise_param_groups(model.stages(), 0.1, 2)


def test_layerwise_rates_scale_each_stage_update():
    """One SGD step moves each stage by its own rate times its gradient."""
    model = small()
    start = parameter.snapshot(model)
    x, y = batch()
    model.eval()  # fixed batch-norm statistics: the same gradient in both passes
    nn.functional.cross_entropy(model(x), y).backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    torch.optim.SGD(parameter.layerwise_param_groups(model.stages(), 0.2, 0.1), lr=1.0).step()
    rate = {"fc": 0.2, "layer4": 0.02, "layer3": 2e-3, "layer2": 2e-4, "layer1": 2e-5, "conv1": 2e-6, "bn1": 2e-6}
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), start[name] - rate[name.split(".")[0]] * grads[name])


def test_l2_sp_is_zero_at_the_start_and_its_gradient_matches_the_formula():
    model = small()
    small_resnet.new_head(model, 3, seed=0)
    start = {k: v for k, v in parameter.snapshot(model).items() if not k.startswith("fc.")}  # pretrained only
    assert parameter.l2_sp_penalty(model, start, alpha=0.1).item() == 0.0
    head_norm = sum(p.pow(2).sum() for p in model.fc.parameters())
    torch.testing.assert_close(parameter.l2_sp_penalty(model, start, alpha=0.1, beta=0.01), 0.005 * head_norm)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.zero_grad()
    parameter.l2_sp_penalty(model, start, alpha=0.3, beta=0.02).backward()
    for name, p in model.named_parameters():
        expected = 0.3 * (p.detach() - start[name]) if name in start else 0.02 * p.detach()
        torch.testing.assert_close(p.grad, expected)
    assert parameter.distance_from(model, start) == pytest.approx(
        sum(float((p.detach() - start[k]).pow(2).sum()) for k, p in model.named_parameters() if k in start) ** 0.5)


def test_l2_sp_skips_frozen_parameters_and_checks_shapes():
    model = small()
    start = parameter.snapshot(model)
    with torch.no_grad():
        model.conv1.weight.add_(1.0)
    parameter.set_trainable(model.conv1, False)
    assert parameter.l2_sp_penalty(model, start, alpha=1.0).item() == 0.0
    small_resnet.new_head(model, 3, seed=0)
    with pytest.raises(ValueError, match="after replacing the head"):
        parameter.l2_sp_penalty(model, start, alpha=1.0)


def test_decay_towards_zero_through_l2_sp_step_equals_sgd_weight_decay():
    """β/2·‖w‖² on every weight (an empty start point) is exactly torch's SGD(weight_decay=β)."""
    x, y = batch(16)
    a, b = small(), small()
    loader = loaders.make_loader((x, y), 8)
    training.train_steps(a, loader, torch.optim.SGD(a.parameters(), lr=0.1), 2, step=parameter.l2_sp_step({}, 0.0, 0.05))
    training.train_steps(b, loader, torch.optim.SGD(b.parameters(), lr=0.1, weight_decay=0.05), 2)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


def test_l2_sp_step_adds_the_penalty_only_in_training():
    model = small()
    start = parameter.snapshot(model)
    with torch.no_grad():
        model.fc.weight.add_(0.5)
    step = parameter.l2_sp_step(start, alpha=2.0)
    x, y = batch()
    model.eval()
    plain = training.supervised_step(model, (x, y))
    assert step(model, (x, y)).loss.item() == pytest.approx(plain.loss.item())
    out = step(model, (x, y))
    model.train()
    out = step(model, (x, y))
    penalty = 0.5 * 2.0 * 0.25 * model.fc.weight.numel()
    assert out.logs["l2_sp"] == pytest.approx(penalty, rel=1e-5)


def test_recalibrate_batchnorm_gives_the_data_statistics():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Dropout(0.5))
    model[1].running_mean.fill_(5.0)
    x = torch.randn(12, 1, 6, 6)
    training.recalibrate_batchnorm(model.train(), loaders.make_loader((x, torch.zeros(12)), 4))
    with torch.no_grad():
        h = model[0](x)
    torch.testing.assert_close(model[1].running_mean, h.mean(dim=(0, 2, 3)))
    # the average of three batch variances (each unbiased), as momentum=None prescribes
    batch_vars = torch.stack([h[i:i + 4].transpose(0, 1).flatten(1).var(dim=1) for i in (0, 4, 8)])
    torch.testing.assert_close(model[1].running_var, batch_vars.mean(dim=0))
    assert model.training and model[1].momentum == 0.1


def test_batchnorm_in_eval():
    model = small().train()
    training.batchnorm_in_eval(model)
    assert not model.bn1.training and model.training and model.conv1.training


def test_train_mode_keeps_frozen_and_marked_batchnorm_in_eval_on_a_plain_sequential():
    """One mechanism for every model: no ``train()`` override needed (nn.Sequential has none)."""
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 3, 3), nn.BatchNorm2d(3),
                          nn.Conv2d(3, 3, 3), nn.BatchNorm2d(3))
    parameter.set_trainable(model[1], False)  # frozen parameters: statistics frozen too
    training.freeze_batchnorm_stats(model[4])  # trainable, but explicitly marked
    before = [model[i].running_mean.clone() for i in (1, 4, 6)]
    training.train_mode(model)
    assert model.training and model[0].training and model[6].training
    assert not model[1].training and not model[4].training
    model(torch.randn(4, 1, 10, 10))
    assert torch.equal(model[1].running_mean, before[0]) and torch.equal(model[4].running_mean, before[1])
    assert not torch.equal(model[6].running_mean, before[2])
    # fit switches modes the same way: after one epoch the frozen layers' statistics have not moved
    x, y = torch.randn(8, 1, 10, 10), torch.randint(0, 3, (8,))
    head = nn.Sequential(model, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3))
    training.fit(head, loaders.make_loader((x, y), 4), torch.optim.SGD(head.parameters(), 0.1), progress=False)
    assert torch.equal(model[1].running_mean, before[0]) and torch.equal(model[4].running_mean, before[1])
    training.freeze_batchnorm_stats(model[4], False)
    assert training.train_mode(model)[4].training


def test_eval_mode_restores_every_module_mode_even_after_an_error():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.BatchNorm1d(2))
    training.train_mode(model)
    model[2].eval()  # a mixed state must come back exactly
    with pytest.raises(RuntimeError, match="boom"):
        with training.eval_mode(model):
            assert not any(m.training for m in model.modules())
            raise RuntimeError("boom")
    assert model.training and model[1].training and not model[2].training
    model.eval()
    with training.eval_mode(model):
        pass
    assert not model.training
