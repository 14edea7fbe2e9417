"""The network against the released code's golden outputs, shapes, fusion, registry."""

import math

import numpy as np
import pytest
import torch

from fanet.core.errors import ConfigError
from fanet.model import create_model, fuse_bn, list_models, model_from_checkpoint, random_model

from conftest import golden_outputs, golden_state_dict


@pytest.mark.parametrize("arch", ["fanet18", "fanet34"])
def test_matches_released_code_golden_logits(arch):
    golden = golden_outputs(arch)
    model = model_from_checkpoint(golden_state_dict(arch))
    with torch.no_grad():
        logits = model(torch.from_numpy(golden["input"])).numpy()
    assert logits.shape == golden["logits"].shape == (1, 19, 24, 40)
    assert np.abs(logits - golden["logits"]).max() <= 1e-6
    assert np.abs(logits - golden["logits_f64"]).max() <= 1e-6


@pytest.mark.parametrize("height,width", [(64, 64), (100, 130), (257, 513), (33, 200)])
def test_logits_are_at_one_eighth_for_any_size(height, width):
    model = create_model("fanet18", num_classes=5)
    with torch.no_grad():
        logits = model(torch.randn(1, 3, height, width))
    assert logits.shape == (1, 5, math.ceil(height / 8), math.ceil(width / 8))


def test_discarded_branch_does_not_change_output(golden_fanet18):
    state, golden = golden_fanet18
    model = model_from_checkpoint(state)
    model.compute_discarded = True
    with torch.no_grad():
        logits = model(torch.from_numpy(golden["input"])).numpy()
    np.testing.assert_array_equal(
        logits, model_from_checkpoint(state)(torch.from_numpy(golden["input"])).detach().numpy()
    )


@pytest.mark.parametrize("arch", ["fanet18", "fanet34"])
def test_fuse_bn_keeps_outputs(arch):
    torch.manual_seed(0)
    model = create_model(arch)
    for module in model.modules():  # non-trivial statistics, unlike a fresh BatchNorm
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    fused = fuse_bn(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(2, 3, 96, 160)
    with torch.no_grad():
        reference, result = model(x), fused(x)
    relative = (result - reference).abs().max() / reference.abs().max()
    assert relative <= 1e-5


def test_registry_lists_models_and_rejects_unknown_names():
    assert list_models() == ["fanet18", "fanet34"]
    assert create_model("fanet34", num_classes=7).clslayer.conv_out.out_channels == 7
    with pytest.raises(ConfigError, match="fanet18, fanet34"):
        create_model("fanet50")


def test_random_model_is_the_same_for_a_seed_and_leaves_the_global_generator():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first, again, other = (random_model("fanet18", seed) for seed in (0, 0, 1))
    assert torch.rand(1) == expected_next
    weights = [m.state_dict()["clslayer.conv_out.weight"] for m in (first, again, other)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])
