"""The narrow ResNet, image tensors with augmentation, transfer models and the looks inside a CNN."""

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models.resnet import ResNet

from transfer_utils.data import loaders
from transfer_utils.models import small_resnet
from transfer_utils.data import image_tensors
from transfer_utils.methods import parameter
from transfer_utils import training
from transfer_utils import vision


def small(width=8, num_classes=5, seed=0):
    torch.manual_seed(seed)
    return small_resnet.SmallResNet(num_classes=num_classes, width=width)


def test_small_resnet_is_a_torchvision_resnet_with_28px_shapes():
    model = small(width=16, num_classes=10).eval()
    assert isinstance(model, ResNet)
    x = torch.randn(3, 1, 28, 28)
    assert model(x).shape == (3, 10)
    assert model.features(x).shape == (3, 128)
    # the blocks see 28, 14, 7 and 4 pixels, with 16, 32, 64 and 128 channels
    sizes = [tuple(vision.feature_maps(model, getattr(model, n), x).shape[1:]) for n in small_resnet.BLOCK_NAMES]
    assert sizes == [(16, 28, 28), (32, 14, 14), (64, 7, 7), (128, 4, 4)]
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.fc(model.features(x)))
    # width 16 with one BasicBlock per stage: about 0.31M parameters (ResNet-18 has 11.7M)
    assert sum(p.numel() for p in model.parameters()) == 308_538


def test_small_resnet_rejects_bad_shapes():
    with pytest.raises(ValueError, match="four block counts"):
        small_resnet.SmallResNet(width=8, layers=(1, 1, 1))


def test_stages_cover_every_parameter_once():
    model = small()
    ids = [id(p) for _, module in model.stages() for p in module.parameters()]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    assert [name for name, _ in model.stages()] == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]


def test_new_head_replaces_fc_and_returns_the_old_one():
    model = small(num_classes=5)
    old = model.fc
    returned = small_resnet.new_head(model, 3, seed=1)
    assert returned is old and model.fc.out_features == 3 and model.fc is not old
    again = small(num_classes=5)
    small_resnet.new_head(again, 3, seed=1)
    torch.testing.assert_close(model.fc.weight, again.fc.weight)  # the head depends on its seed only


def test_grey_tensor_scales_and_checks_input():
    images = np.array([[[0, 255]]], dtype=np.uint8)
    x = image_tensors.grey_tensor(images)
    assert x.shape == (1, 1, 1, 2)
    torch.testing.assert_close(x.flatten(), (torch.tensor([0.0, 255.0]) - image_tensors.FASHION_MEAN) / image_tensors.FASHION_STD)
    with pytest.raises(ValueError, match="uint8 grey images"):
        image_tensors.grey_tensor(np.zeros((2, 28, 28), dtype=np.float32))


def _shifts_and_flips(image: torch.Tensor, pad: int) -> list[torch.Tensor]:
    """Every image the augmentation may produce: edge-padded shifts, mirrored or not."""
    padded = nn.functional.pad(image.unsqueeze(0), (pad,) * 4, mode="replicate")[0]
    h, w = image.shape[-2:]
    out = []
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[..., dy:dy + h, dx:dx + w]
            out += [crop, crop.flip(-1)]
    return out


def test_augmentation_shifts_and_mirrors_and_is_seeded():
    rng = np.random.default_rng(0)
    images = image_tensors.grey_tensor(rng.integers(0, 256, size=(6, 12, 12), dtype=np.uint8))
    labels = np.arange(6)

    def batches(seed):
        torch.manual_seed(seed)
        return [b for b in image_tensors.image_loader(images, labels, 3, augment=True, shuffle=True, seed=seed)]

    first, again = batches(0), batches(0)
    for (xa, ya), (xb, yb) in zip(first, again):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    changed = 0
    for x, y in first:
        for image, label in zip(x, y):
            original = images[label]
            assert any(torch.equal(image, c) for c in _shifts_and_flips(original, 2))
            changed += not torch.equal(image, original)
    assert changed >= 3  # most images were moved or mirrored
    plain = next(iter(image_tensors.image_loader(images, labels, 6)))
    assert torch.equal(plain[0], images) and torch.equal(plain[1], torch.as_tensor(labels))


def test_image_dataset_checks_lengths():
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        image_tensors.ImageDataset(torch.zeros(3, 1, 4, 4), np.array([0, 1]))


def test_train_steps_takes_exactly_the_steps_asked():
    model = small()
    x = image_tensors.grey_tensor(np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8))
    loader = image_tensors.image_loader(x, np.arange(10) % 5, 4)  # 3 batches per pass
    history = training.train_steps(model, loader, torch.optim.SGD(model.parameters(), 0.01), 7)
    assert history.steps == 7


def test_reinitialised_copy_has_same_shapes_new_weights():
    model = small()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.bn1.running_mean += 1.0
    fresh = small_resnet.reinitialised(model, seed=3)
    assert [k for k in fresh.state_dict()] == [k for k in model.state_dict()]
    assert not torch.equal(fresh.conv1.weight, model.conv1.weight)
    assert torch.equal(fresh.bn1.running_mean, torch.zeros_like(fresh.bn1.running_mean))
    assert torch.equal(model.conv1.weight, before["conv1.weight"])  # the original is untouched
    torch.testing.assert_close(small_resnet.reinitialised(model, seed=3).conv1.weight, fresh.conv1.weight)


def test_set_batchnorm_momentum_and_transfer_net():
    net = small_resnet.TransferNet(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1),
                                           nn.Flatten()), 4, 2)
    small_resnet.set_batchnorm_momentum(net, 0.3)
    assert net.features[1].momentum == 0.3
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 2)
    features = training.predict(net.features, torch.randn(5, 3, 8, 8).split(2)).numpy()
    assert features.shape == (5, 4) and features.dtype == np.float32 and net.training


def test_grad_cam_equals_class_activation_map_for_a_pooled_linear_head():
    """With conv → global average pool → linear, Grad-CAM is the CAM of Zhou et al. (2016)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 6, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
    images = torch.randn(4, 1, 10, 10)
    cams, classes = vision.grad_cam(model, model[1], images)
    with torch.no_grad():
        activation = model[1](conv(images))  # (4, 6, 10, 10)
        predicted = model(images).argmax(dim=1)
        expected = torch.relu(torch.einsum("nc,nchw->nhw", model[4].weight[predicted], activation))
        expected = expected / expected.flatten(1).amax(dim=1).view(-1, 1, 1)
    assert torch.equal(classes, predicted)
    torch.testing.assert_close(cams, expected)
    # an explicit class is explained too, and the heat map keeps the input size
    cams_0, classes_0 = vision.grad_cam(model, model[1], images, classes=[0, 0, 0, 0])
    assert cams_0.shape == (4, 10, 10) and classes_0.tolist() == [0] * 4
    assert cams_0.min() >= 0 and cams_0.max() <= 1


def test_grad_cam_works_on_a_frozen_model_and_restores_mode():
    model = small().train()
    for p in model.parameters():
        p.requires_grad_(False)
    cams, _ = vision.grad_cam(model, model.layer3, torch.randn(2, 1, 28, 28))
    assert cams.shape == (2, 28, 28) and model.training


def test_transfer_net_can_keep_pretrained_batchnorm_statistics():
    def body():
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    frozen = training.train_mode(small_resnet.TransferNet(body(), 4, 2, frozen_bn_stats=True))
    assert frozen.training and frozen.head.training and not frozen.features[1].training
    before = frozen.features[1].running_mean.clone()
    frozen(torch.randn(4, 3, 8, 8))
    assert torch.equal(frozen.features[1].running_mean, before)
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 2, (8,))  # fit keeps them frozen too
    training.fit(frozen, loaders.make_loader((x, y), 4), torch.optim.SGD(frozen.parameters(), 0.1), progress=False)
    assert torch.equal(frozen.features[1].running_mean, before)
    assert training.train_mode(small_resnet.TransferNet(body(), 4, 2)).features[1].training


def test_with_head_shares_the_feature_extractor():
    model = small(num_classes=5).eval()
    old = small_resnet.new_head(model, 3, seed=0)
    view = small_resnet.WithHead(model, old)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(view(x), old(model.features(x)))
    assert view.model is model


def test_shared_encoder_joint_step_and_paired_loader():
    encoder = small(num_classes=5)
    shared = parameter.SharedEncoder(encoder, {"source": nn.Linear(64, 5), "target": nn.Linear(64, 3)})
    xa, ya = torch.randn(6, 1, 28, 28), torch.randint(0, 5, (6,))
    xb, yb = torch.randn(2, 1, 28, 28), torch.randint(0, 3, (2,))
    loader = loaders.PairedLoader(loaders.make_loader((xa, ya), 2), loaders.make_loader((xb, yb), 1))
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    assert torch.equal(batches[2][1][0], xb[:1])  # the shorter loader started again
    shared.eval()  # fixed batch-norm statistics: one joint pass equals two separate ones
    out = parameter.joint_step(shared, batches[0])
    (bxa, bya), (bxb, byb) = batches[0]
    expected = (nn.functional.cross_entropy(shared(bxa, "source"), bya)
                + nn.functional.cross_entropy(shared(bxb, "target"), byb))
    torch.testing.assert_close(out.loss, expected)
    assert set(out.logs) == {"source_loss", "target_loss"} and out.logits.shape == (1, 3)
    view = shared.for_task("source").eval()
    with torch.no_grad():
        torch.testing.assert_close(view(xa), shared.heads["source"](encoder.eval().features(xa)))


def test_center_square():
    image = np.arange(2 * 4 * 3).reshape(2, 4, 3)
    assert image_tensors.center_square(image).shape == (2, 2, 3)
    assert np.array_equal(image_tensors.center_square(image), image[:, 1:3])
