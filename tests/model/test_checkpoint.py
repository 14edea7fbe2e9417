"""Checkpoint formats seen in the wild, ImageNet encoder loading, and bad input."""

import collections

import numpy as np
import pytest
import torch

from fanet.core.errors import CheckpointError
from fanet.model import (
    create_model,
    infer_arch,
    load_checkpoint,
    load_imagenet_backbone,
    model_from_checkpoint,
    random_model,
    read_state_dict,
)


def _training_names(state):
    renamed = {}
    for key, value in state.items():
        name = key.replace("fam_", "ffm_", 1) if key.startswith("fam_") else key
        name = name.replace("clslayer.", "clslayer_8.", 1) if name.startswith("clslayer.") else name
        renamed[name] = value
    for head in ("clslayer_16", "clslayer_32"):  # auxiliary heads, as in keys_*_train.json
        renamed[f"{head}.conv.conv.weight"] = torch.randn(64, 128, 3, 3)
        renamed[f"{head}.conv_out.weight"] = torch.randn(19, 64, 1, 1)
    return renamed


CHECKPOINT_FORMATS = {
    "testing_state_dict": lambda s: s,
    "training_names": _training_names,
    "model_state_wrapper": lambda s: {
        "model_state": _training_names(s),
        "iter": 80000,
        "best_iou": np.float64(0.752),  # what the training code stores
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0, 1]}]},
    },
    "state_dict_wrapper": lambda s: {"state_dict": s},
    "model_wrapper": lambda s: {"model": s},
    "module_prefix": lambda s: collections.OrderedDict(
        ("module." + k, v) for k, v in _training_names(s).items()
    ),
    "torch_compile_prefix": lambda s: {"_orig_mod." + k: v for k, v in s.items()},
    "compiled_under_dataparallel": lambda s: {"module._orig_mod." + k: v for k, v in s.items()},
}


@pytest.fixture(scope="module")
def reference(golden_fanet18):
    state, golden = golden_fanet18
    x = torch.from_numpy(golden["input"])
    with torch.no_grad():
        return state, x, model_from_checkpoint(state)(x)


@pytest.mark.parametrize("fmt", sorted(CHECKPOINT_FORMATS))
@pytest.mark.parametrize("suffix", [".pth", ".pkl"])
def test_every_checkpoint_format_gives_identical_outputs(reference, tmp_path, fmt, suffix):
    state, x, expected = reference
    path = tmp_path / f"fanet18{suffix}"
    torch.save(CHECKPOINT_FORMATS[fmt](state), path)
    model = model_from_checkpoint(path)
    assert (model.arch, model.num_classes) == ("fanet18", 19)
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


def test_dict_source_and_explicit_model(reference):
    state, x, expected = reference
    model = load_checkpoint(create_model("fanet18"), {"model_state": state})
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


def test_architecture_and_classes_are_inferred():
    state = create_model("fanet34", num_classes=21).state_dict()
    assert infer_arch(read_state_dict(state)) == "fanet34"
    model = model_from_checkpoint(state)
    assert (model.arch, model.num_classes) == ("fanet34", 21)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_state_dict(tmp_path / "nope.pth")


def test_text_file(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        read_state_dict(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "fanet18.pth"
    torch.save(create_model("fanet18").state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        read_state_dict(path)


class _Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_is_never_executed(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": _Payload()}, path)
    with pytest.raises(CheckpointError, match="refused for safety"):
        read_state_dict(path)
    assert "pickled code ran" not in capsys.readouterr().out


def test_checkpoint_of_another_network(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(
        torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8, 2)).state_dict(), path
    )
    with pytest.raises(CheckpointError, match="not a FANet checkpoint"):
        model_from_checkpoint(path)


def test_wrong_class_count_names_both():
    state = create_model("fanet18", num_classes=21).state_dict()
    with pytest.raises(CheckpointError, match="21 classes but the model has 19"):
        load_checkpoint(create_model("fanet18", num_classes=19), state)


def test_other_architecture_names_keys():
    state = create_model("fanet34").state_dict()
    with pytest.raises(CheckpointError, match=r"unexpected keys \(resnet\.layer1\.2"):
        load_checkpoint(create_model("fanet18"), state)


def test_shape_difference_names_key_and_shapes():
    state = create_model("fanet18").state_dict()
    state["fam_8.w_qs.conv.weight"] = torch.zeros(32, 128, 3, 3)
    with pytest.raises(CheckpointError, match=r"fam_8\.w_qs\.conv\.weight \(32, 128, 3, 3\)"):
        load_checkpoint(create_model("fanet18"), state)


def _torchvision_resnet_state(arch):
    """A state dict with torchvision's resnet key names (torchvision has no CPU wheel here)."""
    encoder = create_model(arch).resnet.state_dict()
    state = {
        k: torch.randn_like(v.float())
        for k, v in encoder.items()
        if not k.startswith("layer1.0.downsample.")
    }
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    return state


def test_imagenet_encoder_loads_and_reports_fresh_keys(tmp_path):
    path = tmp_path / "resnet18-f37072fd.pth"
    imagenet = _torchvision_resnet_state("fanet18")
    torch.save(imagenet, path)
    model = create_model("fanet18")
    fresh = load_imagenet_backbone(model, path)
    assert fresh and all(k.startswith("layer1.0.downsample.") for k in fresh)
    loaded = model.resnet.state_dict()["layer4.1.conv2.weight"]
    torch.testing.assert_close(loaded, imagenet["layer4.1.conv2.weight"])


def test_imagenet_weights_of_the_wrong_depth(tmp_path):
    path = tmp_path / "resnet34.pth"
    torch.save(_torchvision_resnet_state("fanet34"), path)
    with pytest.raises(CheckpointError, match="resnet18"):
        load_imagenet_backbone(create_model("fanet18"), path)


@pytest.mark.parametrize(
    "name,kind", [("m.onnx", "an ONNX graph"), ("m.engine", "a TensorRT engine")]
)
def test_a_graph_given_as_checkpoint_is_named_for_what_it_is(tmp_path, name, kind):
    path = tmp_path / name
    path.write_bytes(b"\x08\x07")
    with pytest.raises(CheckpointError, match=f"is {kind}, not a PyTorch checkpoint"):
        model_from_checkpoint(path)


@pytest.mark.parametrize(
    "key, value",
    [
        ("resnet.conv1.weight", float("nan")),  # one element
        ("resnet.bn1.running_var", float("inf")),  # a whole statistic
        ("clslayer.conv_out.weight", float("-inf")),
    ],
)
def test_non_finite_weights_or_statistics_are_refused(tmp_path, key, value):
    state = random_model("fanet18").state_dict()
    if key.endswith("running_var"):
        state[key][:] = value
    else:
        state[key].view(-1)[0] = value
    path = tmp_path / "diverged.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=f"NaN or infinite values in 1 tensors: {key}"):
        model_from_checkpoint(path)
