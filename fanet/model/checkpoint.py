"""Reading FANet checkpoints in every format seen in the wild (see FANET_SPEC.md).

Accepted: the Testing-model state dict, the training-code state dict (``ffm_*``,
``clslayer_8``, auxiliary heads), either wrapped under ``model_state``, ``state_dict`` or
``model``, with or without DataParallel's ``module.`` and ``torch.compile``'s ``_orig_mod.``
prefixes (in either order). Files are read with
``weights_only`` loading: no pickled code is ever executed.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import re
from collections.abc import Mapping
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from fanet.core.errors import CheckpointError
from fanet.model.fanet import FANet
from fanet.model.registry import arch_from_blocks, create_model

logger = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]
CheckpointSource = Union[str, os.PathLike, Mapping[str, Any]]

_WRAPPER_KEYS = ("model_state", "state_dict", "model")
_TRAINING_RENAMES = (("ffm_", "fam_"), ("clslayer_8.", "clslayer."))
_AUXILIARY_HEADS = ("clslayer_16.", "clslayer_32.")
_MAX_LISTED_KEYS = 5


def _numpy_safe_globals() -> list[Any]:
    """Numpy scalar types that training code stores (e.g. ``best_iou``); data, not code."""
    try:
        multiarray = importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy 1.x
        multiarray = importlib.import_module("numpy.core.multiarray")
    scalar = multiarray.scalar
    dtype_classes = [getattr(np.dtypes, name) for name in np.dtypes.__all__]
    return [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtype_classes]


NOT_CHECKPOINTS = {
    ".onnx": "an ONNX graph",
    ".engine": "a TensorRT engine",
    ".plan": "a TensorRT engine",
    ".trt": "a TensorRT engine",
}


def _load_file(path: str | os.PathLike) -> Any:
    if os.path.isdir(path):
        raise CheckpointError(f"{os.fspath(path)} is a folder, not a checkpoint file")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {os.fspath(path)}")
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix in NOT_CHECKPOINTS:
        raise CheckpointError(
            f"{os.fspath(path)} is {NOT_CHECKPOINTS[suffix]}, not a PyTorch checkpoint "
            "(.pth, .pt or .pkl)"
        )
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "bad pickle data"
        if "weights only" in str(exc).lower() or "unsupported global" in str(exc).lower():
            reason = "it holds Python objects other than tensors, refused for safety"
        raise CheckpointError(f"cannot read checkpoint {os.fspath(path)}: {reason}") from None
    except Exception as exc:  # torch.load raises many types on malformed files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"cannot read checkpoint {os.fspath(path)}: not a PyTorch file, or truncated "
            f"({first_line})"
        ) from None


def _unwrap(obj: Any) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint holds a {type(obj).__name__}, not a state dict")
    for key in _WRAPPER_KEYS:
        if isinstance(obj.get(key), Mapping):
            return obj[key]
    return obj


def _canonical_key(key: str) -> str:
    key = re.sub(r"^(?:module\.|_orig_mod\.)+", "", key)
    for old, new in _TRAINING_RENAMES:
        if key.startswith(old):
            key = new + key[len(old) :]
    return key


def read_state_dict(source: CheckpointSource) -> StateDict:
    """The checkpoint's tensors under the Testing-model key names."""
    raw = _unwrap(_load_file(source) if isinstance(source, (str, os.PathLike)) else source)
    state: StateDict = {}
    dropped = []
    for key, value in raw.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor"
            )
        canonical = _canonical_key(str(key))
        if canonical.startswith(_AUXILIARY_HEADS):
            dropped.append(canonical)
            continue
        state[canonical] = value
    if dropped:
        logger.info("dropped %d keys of the training code's auxiliary heads", len(dropped))
    _check_is_fanet(state)
    _check_finite(state)
    return state


def _check_finite(state: StateDict) -> None:
    """Refuse weights or BatchNorm statistics that are NaN or infinite: such a network
    gives NaN logits, and the labels they argmax to are meaningless."""
    broken = []
    for key, value in state.items():
        if value.is_floating_point():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                broken.append(f"{key} ({bad} of {value.numel()})")
    if broken:
        raise CheckpointError(
            f"checkpoint has NaN or infinite values in {len(broken)} tensors: {_list(broken)}; "
            "it cannot give meaningful labels (a diverged training run?)"
        )


def _check_is_fanet(state: StateDict) -> None:
    required = ("resnet.conv1.weight", "fam_4.w_qs.conv.weight", "clslayer.conv_out.weight")
    missing = [key for key in required if key not in state]
    if missing:
        sample = ", ".join(sorted(state)[:3]) or "no keys"
        raise CheckpointError(
            f"not a FANet checkpoint: {missing[0]!r} is missing (it has {len(state)} keys: "
            f"{sample}, ...)"
        )


def infer_arch(state: StateDict) -> str:
    """``fanet18`` or ``fanet34`` from the number of residual blocks in each stage."""
    blocks = tuple(
        len({key.split(".")[2] for key in state if key.startswith(f"resnet.layer{stage}.")})
        for stage in range(1, 5)
    )
    arch = arch_from_blocks(blocks)
    if arch is None:
        raise CheckpointError(f"checkpoint encoder has {blocks} blocks per stage: not FANet-18/34")
    return arch


def infer_num_classes(state: StateDict) -> int:
    """Number of classes of the checkpoint's classifier."""
    return int(state["clslayer.conv_out.weight"].shape[0])


def _list(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED_KEYS])
    more = len(keys) - _MAX_LISTED_KEYS
    return shown + (f" and {more} more" if more > 0 else "")


def load_checkpoint(model: nn.Module, source: CheckpointSource) -> nn.Module:
    """Load ``source`` into ``model`` strictly; every mismatch is a ``CheckpointError``."""
    state = read_state_dict(source)
    expected = model.state_dict()
    if isinstance(model, FANet):
        found_classes = infer_num_classes(state)
        if found_classes != model.num_classes:
            raise CheckpointError(
                f"checkpoint has {found_classes} classes but the model has "
                f"{model.num_classes}; create the model with num_classes={found_classes}"
            )
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_list(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_list(unexpected)})")
        arch = getattr(model, "arch", type(model).__name__)
        raise CheckpointError(f"checkpoint does not fit {arch}: " + "; ".join(parts))
    wrong_shapes = [
        f"{key} {tuple(state[key].shape)} vs model {tuple(value.shape)}"
        for key, value in expected.items()
        if state[key].shape != value.shape
    ]
    if wrong_shapes:
        raise CheckpointError(f"checkpoint shapes differ: {_list(wrong_shapes)}")
    model.load_state_dict(state)
    return model


def model_from_checkpoint(
    source: CheckpointSource, arch: str | None = None, num_classes: int | None = None
) -> FANet:
    """A FANet built for ``source`` (architecture and classes inferred unless given), loaded."""
    state = read_state_dict(source)
    model = create_model(arch or infer_arch(state), num_classes or infer_num_classes(state))
    load_checkpoint(model, state)
    return model.eval()


def load_imagenet_backbone(model: FANet, path: str | os.PathLike) -> list[str]:
    """Load a torchvision ``resnet18``/``resnet34`` ImageNet state dict into the encoder.

    ``fc.*`` is dropped. Returns the encoder keys left freshly initialised
    (``layer1.0.downsample.*``, which ImageNet ResNets do not have).
    """
    raw = {_canonical_key(k): v for k, v in _unwrap(_load_file(path)).items()}
    weights = {k: v for k, v in raw.items() if not k.startswith("fc.")}
    encoder_state = model.resnet.state_dict()
    needed = f"a torchvision resnet{model.arch[len('fanet') :]} state dict is needed"
    unexpected = sorted(set(weights) - set(encoder_state))
    if unexpected or "conv1.weight" not in weights:
        raise CheckpointError(
            f"{os.fspath(path)} does not fit the {model.arch} encoder (unexpected keys: "
            f"{_list(unexpected) or 'none'}): {needed}"
        )
    wrong_shapes = [k for k, v in weights.items() if v.shape != encoder_state[k].shape]
    if wrong_shapes:
        raise CheckpointError(f"ImageNet weights have other shapes for: {_list(wrong_shapes)}")
    fresh = sorted(set(encoder_state) - set(weights))
    unexplained = [k for k in fresh if not k.startswith("layer1.0.downsample.")]
    if unexplained:
        raise CheckpointError(
            f"ImageNet weights lack {len(unexplained)} encoder keys ({_list(unexplained)}): "
            f"{needed}"
        )
    model.resnet.load_state_dict(weights, strict=False)
    logger.info("loaded ImageNet encoder; fresh keys: %s", ", ".join(fresh))
    return fresh
