"""How an exported graph is checked: run by ONNX Runtime on the CPU and compared with its
reference (PyTorch for FP32, the FP32 graph for the lower precisions) (host side)."""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import numpy as np
import torch

from fanet.core.metrics import labels_agreement, logits_agreement
from fanet.core.sidecar import Sidecar
from fanet.export.config import ExportConfig
from fanet.export.errors import ExportError
from fanet.export.onnx_export import DYNAMIC_EXAMPLE_SIZE, DeployableFANet
from fanet.export.onnx_runs import run_frames
from fanet.model.fanet import FANet

logger = logging.getLogger(__name__)

FP32_TOLERANCE = 1e-3  # max relative logit error of ONNX vs PyTorch before export fails
VERIFY_FRAMES = 3  # frames in turn per verification size of a temporal graph

Agreement = dict[str, float]


def _compare(reference: np.ndarray, candidate: np.ndarray, num_classes: int) -> Agreement:
    if reference.dtype.kind == "f":
        return logits_agreement(reference, candidate.astype(np.float32), num_classes)
    return labels_agreement(reference, candidate, num_classes)


def _pooled(results: list[Agreement]) -> Agreement:
    """One figure per metric over several inputs: the worst error, the mean agreement."""
    pooled = {}
    for key in results[0]:
        values = [r[key] for r in results]
        if key in ("max_abs", "max_rel"):
            pooled[key] = float(max(values))
        elif key == "finite":
            pooled[key] = float(min(values))
        else:
            pooled[key] = float(np.mean(values))
    return pooled


def agreement_with(
    reference_path: str, candidate_path: str, batches: list[np.ndarray], common: Sidecar
) -> Agreement:
    """Agreement of two graphs over ``batches`` taken in turn (a temporal graph's state
    carried in each), output by output."""
    output = common.output_tensor
    references = run_frames(reference_path, batches, common.state)
    candidates = run_frames(candidate_path, batches, common.state)
    return _pooled(
        [
            _compare(reference[output], candidate[output], common.num_classes)
            for reference, candidate in zip(references, candidates)
        ]
    )


def verify_fp32(model: FANet, path: str, config: ExportConfig, common: Sidecar) -> Agreement:
    """Agreement of the ONNX graph with PyTorch on random inputs: a temporal graph on
    ``VERIFY_FRAMES`` frames in turn per size, its state carried in both."""
    sizes = [config.size] if config.size else [DYNAMIC_EXAMPLE_SIZE, (200, 328)]
    reference_model = DeployableFANet(
        model, config.output, config.full_res, config.temporal, config.temporal_reduce
    ).eval()
    frames = VERIFY_FRAMES if config.temporal > 1 else 1
    rng = np.random.default_rng(config.seed)
    results = []
    images = min(config.max_batch, 2)  # a dynamic batch axis is checked with two images
    for height, width in sizes:
        shape = (images, 3, height, width)
        batches = [rng.standard_normal(shape).astype(np.float32) for _ in range(frames)]
        candidates = run_frames(path, batches, common.state)
        state = reference_model.initial_state(torch.from_numpy(batches[0]))
        for batch, candidate in zip(batches, candidates):
            with torch.no_grad():
                reference, *state = _as_tuple(reference_model(torch.from_numpy(batch), *state))
            results.append(_compare(reference.numpy(), candidate[config.output], model.num_classes))
    agreement = _pooled(results)
    require_finite(path, "PyTorch", agreement)
    if agreement.get("max_rel", 0.0) > FP32_TOLERANCE:
        raise ExportError(
            f"ONNX output differs from PyTorch by {agreement['max_rel']:.2e} "
            f"(relative); the exported graph is wrong"
        )
    return agreement


def require_finite(path: str, reference: str, agreement: Agreement) -> None:
    """Refuse a graph whose outputs, or whose comparison with ``reference``, are not
    finite numbers: its labels would be meaningless, whatever the figures say."""
    broken = {k: v for k, v in agreement.items() if not math.isfinite(v)}
    if broken or agreement.get("finite", 1.0) < 1.0:
        raise ExportError(
            f"{os.path.basename(path)} gives outputs that are not finite numbers on the "
            f"verification inputs (finite {agreement.get('finite', 0.0):.4g}; "
            f"{', '.join(sorted(broken)) or 'no figure'} not finite against {reference}): "
            "not written"
        )


def _as_tuple(outputs: Any) -> tuple:
    return outputs if isinstance(outputs, tuple) else (outputs,)


def log_agreement(path: str, reference: str, agreement: Agreement) -> None:
    shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(agreement.items()))
    logger.info("%s vs %s: %s", os.path.basename(path), reference, shown)
