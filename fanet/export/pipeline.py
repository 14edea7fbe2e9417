"""``fanet-export`` as a library call: checkpoint -> FP32 / FP16 / INT8 ONNX with sidecars
(host side). This module sequences one export; ``run`` does each graph's steps,
``recipes`` makes the lower precisions, ``verify`` checks them.

The files of one export are written by a ``SetWriter``: under temporary names while a lock
on the stem is held, renamed into place together when all succeeded. Files of the previous
set that the new one does not rewrite stay only if they were made from the same FP32 graph
(each sidecar records it as ``fp32_sha256``).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from fanet import __version__
from fanet.calibration.cache import ranges_made_from
from fanet.calibration.crops import sample_crops
from fanet.calibration.sources import ImageSource, open_source
from fanet.core.artefact_set import ArtefactSet
from fanet.core.files import check_replaceable, check_writable_folder, sha256_file
from fanet.core.set_writer import SetWriter
from fanet.core.sidecar import IMAGENET_MEAN, IMAGENET_STD, Provenance, Sidecar, sidecar_path
from fanet.export.config import ExportConfig, validate
from fanet.export.onnx_export import DYNAMIC_EXAMPLE_SIZE
from fanet.export.recipes import export_fp16, export_int8
from fanet.export.run import ExportedFile, ExportRun
from fanet.model import model_from_checkpoint, random_model
from fanet.model.fanet import OUTPUT_STRIDE, FANet
from fanet.model.temporal import TemporalFANet

logger = logging.getLogger(__name__)

VERIFY_CROPS = 8

__all__ = ["ExportConfig", "ExportedFile", "run_export"]


def run_export(config: ExportConfig) -> list[ExportedFile]:
    """Export as ``config`` asks; returns the written graphs (FP32 first).

    All files appear together or none does: a failure or interruption leaves the folder
    as it was (a graph a targeted TensorRT would reject is never saved).
    """
    validate(config)
    check_writable_folder(config.output_dir)
    source = None
    if config.int8 and config.calib_data is not None:
        source = open_source(config.calib_data, config.calib_split)
    if config.int8 and config.eval_data is not None:
        open_source(config.eval_data, config.eval_split, "--eval-data")  # before the work
    model = _load_model(config)
    artefacts = ArtefactSet(os.path.join(config.output_dir, _stem(config, model)))
    if config.random_weights:
        logger.warning("exporting RANDOM weights (seed %d): for speed tests only", config.seed)
    for path in artefacts.files() + [config.calib_cache or artefacts.ranges_cache]:
        check_replaceable(path, config.force)  # before minutes of work, not after
    with SetWriter(artefacts.stem, config.force) as files:
        run = ExportRun(config, artefacts, _common_sidecar(config, model), files)
        written = [run.write_fp32(model)]
        verify_batches = _verify_batches(config, source)
        if config.fp16:
            written.append(export_fp16(run, verify_batches or _random_batches(config)))
        if source is not None and verify_batches is not None:
            written += export_int8(run, source, verify_batches)
        files.commit(obsolete=_obsolete(artefacts, run.common.provenance.fp32_sha256 or ""))
    return written


def _load_model(config: ExportConfig) -> FANet:
    if config.weights is not None:
        return model_from_checkpoint(config.weights, config.arch, config.num_classes)
    return random_model(config.arch or "fanet18", config.seed, config.num_classes or 19)


def _stem(config: ExportConfig, model: FANet) -> str:
    if config.name:
        return config.name
    size = "dynamic" if config.size is None else f"{config.size[0]}x{config.size[1]}"
    temporal = f"_t{config.temporal}" if config.temporal > 1 else ""
    return f"{model.arch}_{size}{temporal}" + ("_labels" if config.output == "labels" else "")


def _common_sidecar(config: ExportConfig, model: FANet) -> Sidecar:
    """What every graph of the export shares: the model, its input and output, provenance."""
    return Sidecar(
        arch=model.arch,
        num_classes=model.num_classes,
        input_size=config.size,
        dynamic=config.size is None,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        output=config.output,
        output_stride=1 if config.full_res else OUTPUT_STRIDE,
        opset=config.opset,
        fanet_version=__version__,
        max_batch=config.max_batch,
        temporal=config.temporal,
        temporal_reduce=config.temporal_reduce if config.temporal > 1 else None,
        state=TemporalFANet(model, config.temporal, config.temporal_reduce).state_tensors(),
        provenance=Provenance(
            checkpoint_sha256=sha256_file(config.weights) if config.weights else None,
            random_weights=config.random_weights,
        ),
    )


def _verify_batches(config: ExportConfig, source: ImageSource | None) -> list[np.ndarray] | None:
    """Calibration-data crops the lower precisions are checked on (None without data)."""
    if source is None or config.size is None:
        return None
    count = min(VERIFY_CROPS, len(source))
    return list(sample_crops(source, count, config.size, config.seed + 1))


def _random_batches(config: ExportConfig) -> list[np.ndarray]:
    height, width = config.size or DYNAMIC_EXAMPLE_SIZE
    rng = np.random.default_rng(config.seed)
    return [rng.standard_normal((1, 3, height, width)).astype(np.float32)]


def _obsolete(artefacts: ArtefactSet, fp32_sha256: str) -> list[str]:
    """Files of the previous set not made from the FP32 graph (sha256 ``fp32_sha256``)
    this export wrote."""
    obsolete = []
    for variant, graph in artefacts.graphs().items():
        if artefacts.made_from(variant) != fp32_sha256:
            obsolete += [graph, sidecar_path(graph)]
    if artefacts.graph("int8") in obsolete:
        obsolete.append(artefacts.tensorrt_cache)
    made_from = ranges_made_from(artefacts.ranges_cache)  # not --calib-cache: the user's
    if made_from is not None and made_from != fp32_sha256:
        obsolete.append(artefacts.ranges_cache)
    return [path for path in obsolete if os.path.exists(path)]
