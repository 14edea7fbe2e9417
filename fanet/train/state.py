"""Training checkpoints (host side): what ``fanet-export`` loads, and what a resumed run
needs to continue the same loss curve.

A checkpoint holds ``model_state`` (FANet's own keys: ``fanet-export --weights`` reads it),
the auxiliary heads, the optimiser, scheduler and gradient scaler, every random generator
and the iteration, with the settings the run was started with. It is written under a
temporary name and renamed, so a run killed while saving leaves the previous one.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fanet.core.errors import CheckpointError
from fanet.core.files import OutputError, atomic_write, free_space_text

# Settings a resumed run must share with the run it continues (the schedule depends on them).
RESUME_FIXED = ("arch", "num_classes", "batch", "iters", "crop", "temporal", "temporal_reduce")


@dataclass(frozen=True)
class Optimisation:
    """What steps the weights: the optimizer, its learning-rate schedule, the AMP scaler."""

    optimizer: Any
    scheduler: Any
    scaler: Any


def save(
    path: str,
    network: Any,
    optimisation: Optimisation,
    iteration: int,
    settings: dict[str, Any],
    best_miou: float | None,
) -> None:
    """Write a checkpoint of ``network`` (a ``TrainingFANet``) after ``iteration`` steps."""
    state = {
        "model_state": network.model.state_dict(),
        "aux_state": network.auxiliary_state(),
        "optimizer": optimisation.optimizer.state_dict(),
        "scheduler": optimisation.scheduler.state_dict(),
        "scaler": optimisation.scaler.state_dict(),
        "iteration": iteration,
        "iter": iteration,  # the released training code's name
        "best_iou": best_miou,
        "settings": settings,
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": _numpy_state(),
            "python": random.getstate(),
        },
    }
    try:
        with atomic_write(path) as stream:
            torch.save(state, stream)
    except RuntimeError:  # PyTorch's writer reports a failed write (a full disk) this way
        raise OutputError(
            f"cannot write {path}: the write failed ({free_space_text(path)} free in "
            f"{os.path.dirname(os.path.abspath(path))})"
        ) from None


def load(path: str) -> dict[str, Any]:
    """A checkpoint written by ``save``; ``CheckpointError`` for anything else."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint to resume from: {path}") from None
    except Exception as exc:  # torch raises many kinds for a bad file
        empty = os.path.isfile(path) and os.path.getsize(path) == 0
        reason = "it is empty" if empty else str(exc).strip() or type(exc).__name__
        raise CheckpointError(f"cannot read training checkpoint {path}: {reason}") from None
    if not isinstance(state, dict) or "optimizer" not in state or "iteration" not in state:
        raise CheckpointError(f"{path} is not a fanet-train checkpoint (no optimiser state)")
    return state


def check_resumable(state: dict[str, Any], settings: dict[str, Any], path: str) -> None:
    """``CheckpointError`` where this run's schedule-defining settings differ."""
    saved = state.get("settings", {})
    differing = [key for key in RESUME_FIXED if saved.get(key) != settings.get(key)]
    if differing:
        key = differing[0]
        raise CheckpointError(
            f"{path} was trained with {key}={saved.get(key)!r}, this run has "
            f"{settings.get(key)!r}: resume with the same settings"
        )


def restore(state: dict[str, Any], network: Any, optimizer: Any, scheduler: Any,
            scaler: Any) -> int:  # fmt: skip
    """Put a checkpoint's state back; returns the iteration it was saved after."""
    network.model.load_state_dict(state["model_state"])
    network.load_state_dict(state["aux_state"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    generators = state["rng"]
    torch.set_rng_state(generators["torch"])
    if generators["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(generators["cuda"])
    numpy = dict(generators["numpy"])
    numpy["state"] = dict(numpy["state"], key=np.asarray(numpy["state"]["key"], np.uint32))
    np.random.set_state(numpy)
    random.setstate(_as_tuples(generators["python"]))
    return int(state["iteration"])


def _numpy_state() -> dict[str, Any]:
    """numpy's global generator state with plain ints (what a weights-only load reads)."""
    state = np.random.get_state(legacy=False)
    return dict(state, state=dict(state["state"], key=state["state"]["key"].tolist()))


def _as_tuples(value: Any) -> Any:
    """``random.setstate`` wants the tuples ``getstate`` gave (a load may give lists)."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
