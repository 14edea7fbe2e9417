"""What ``fanet-export`` is asked for, checked before any work (host side)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fanet.conformance.check import version_text
from fanet.conformance.rules import (
    Version,
    generation,
    is_release,
    releases_text,
    serves,
    versions_for_opset,
)
from fanet.core.errors import ConfigError
from fanet.core.names import check_name
from fanet.model.temporal import check_window


@dataclass
class ExportConfig:
    """Everything ``fanet-export`` can be asked for (see ``fanet-export --help``)."""

    weights: str | None = None
    random_weights: bool = False
    arch: str | None = None
    num_classes: int | None = None
    size: tuple[int, int] | None = (512, 1024)  # None: dynamic height and width
    opset: int = 17
    output: str = "logits"
    full_res: bool = False
    fp16: bool = False
    fp16_io: bool = False
    int8: bool = False
    calib_data: str | None = None
    calib_split: str = "train"
    calib_count: int = 500
    calib_method: str = "minmax"
    calib_cache: str | None = None
    int8_budget: float | None = None  # mIoU points INT8 may lose against FP32
    int8_float: tuple[str, ...] = ()  # groups (ONNX node names) kept float, given by hand
    eval_data: str | None = None  # None: calibration images calibration did not use
    eval_split: str = "val"
    eval_count: int = 16
    seed: int = 0
    output_dir: str = "."
    name: str | None = None
    target_trt: tuple[Version, ...] = ()  # empty: every known version the opset serves
    force: bool = False  # replace read-only files
    max_batch: int = 1  # > 1: a dynamic batch axis up to this (serving with Triton)
    temporal: int = 1  # frames each attention spans (paper Sec. III-D); 1: single-frame
    temporal_reduce: str = "mean"  # "mean" (single-frame weights) or "sum" (Eq. 6)

    def targets(self) -> tuple[Version, ...]:
        """The TensorRT versions every graph must conform to."""
        return self.target_trt or versions_for_opset(self.opset)


def validate(config: ExportConfig) -> None:
    """``ConfigError`` for the first request that cannot be met, naming the flag."""
    if config.weights is None and not config.random_weights:
        raise ConfigError(
            "no --weights given; pass a checkpoint, or --random-weights for speed tests only"
        )
    if config.weights is not None and config.random_weights:
        raise ConfigError("--weights and --random-weights exclude each other")
    if config.fp16_io and not config.fp16:
        raise ConfigError("--fp16-io needs --fp16")
    if config.int8 and config.calib_data is None:
        raise ConfigError("--int8 needs --calib-data (a Cityscapes root, image folder or video)")
    if config.int8 and config.size is None:
        raise ConfigError("--int8 needs a fixed --res: calibration crops have the export size")
    if config.name is not None:
        check_name(config.name, "--name")
    _check_judging(config)
    if config.calib_count < 1:
        raise ConfigError(f"--calib-count must be at least 1, got {config.calib_count}")
    check_window(config.temporal, config.temporal_reduce)
    if config.max_batch < 1:
        raise ConfigError(f"--max-batch must be at least 1, got {config.max_batch}")
    for version in config.target_trt:
        _check_target(version, config.opset)


def _check_judging(config: ExportConfig) -> None:
    """The requests that have INT8 judged on images: a budget, an automatic method."""
    if config.calib_method == "auto" and not config.int8:
        raise ConfigError("--calib-method auto needs --int8")
    if config.calib_method == "auto" and config.temporal > 1:
        raise ConfigError("--calib-method auto judges single-frame exports: drop --temporal")
    if config.eval_count < 1:
        raise ConfigError(f"--eval-count must be at least 1, got {config.eval_count}")
    if config.int8_float and not config.int8:
        raise ConfigError("--int8-float needs --int8")
    budget = config.int8_budget
    if budget is None:
        return
    if config.int8_float:
        raise ConfigError(
            "--int8-float and --int8-budget both choose the float groups: pass one of them"
        )
    if not math.isfinite(budget) or budget < 0:
        raise ConfigError(f"--int8-budget must be a number of mIoU points >= 0, got {budget}")
    if not config.int8:
        raise ConfigError("--int8-budget needs --int8")
    if config.temporal > 1:
        raise ConfigError("--int8-budget judges single-frame exports: drop --temporal")


def _check_target(version: Version, opset: int) -> None:
    if version < (8, 2):
        raise ConfigError(f"--target-trt {version_text(version)}: fanet supports 8.2 and newer")
    if not is_release(version):
        raise ConfigError(
            f"--target-trt {version_text(version)}: no TensorRT release fanet knows "
            f"({releases_text()})"
        )
    rules = generation(version)
    if not serves(version, opset):
        raise ConfigError(
            f"TensorRT {version_text(version)} parses opsets {rules.min_opset}.."
            f"{rules.max_opset}, not --opset {opset}: choose an opset in that range"
        )
