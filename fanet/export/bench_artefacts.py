"""Models for benchmarking a checkpoint (or random weights) at a given size (host side).

``fanet-trt-bench`` reaches this module by name (``fanet.bench.plan``): on a
device without the host side, exporting on the fly is a clear error.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

from fanet import __version__
from fanet.bench.plan import BenchRequest
from fanet.core.artefact_set import ArtefactSet, variant_for
from fanet.core.files import sha256_file
from fanet.core.set_writer import stem_lock
from fanet.core.sidecar import MetadataError, read_sidecar, sidecar_path
from fanet.core.synthetic import write_cityscapes
from fanet.export.pipeline import ExportConfig, run_export
from fanet.model import random_model
from fanet.model.fanet import FANet

logger = logging.getLogger(__name__)

BENCH_CALIBRATION_CROPS = 16


def bench_onnx(
    request: BenchRequest, size: tuple[int, int], precision: str, temporal: int = 1
) -> str:
    """The ``precision`` ONNX of ``request.weights`` (random weights of ``request.arch``
    without) at ``size``, attending to ``temporal`` frames, exported into
    ``request.work_dir`` once.

    An export is reused while its sidecar names this version of fanet; an older one is
    exported again, since the graph fanet writes may have changed. Concurrent benchmarks
    sharing the folder take turns: the second reuses what the first exported.
    """
    weights, arch = request.weights, request.arch
    tag = sha256_file(weights)[:12] if weights else f"random-{arch or 'fanet18'}"
    name = f"{tag}_{size[0]}x{size[1]}" + (f"_t{temporal}" if temporal > 1 else "")
    artefacts = ArtefactSet(os.path.join(request.work_dir, name))
    path = artefacts.graph(variant_for("onnxruntime", precision))
    with stem_lock(artefacts.stem):  # the lock run_export takes too
        if _current(path):
            logger.info("reusing %s, exported by an earlier benchmark (--work-dir)", path)
            return path
        calib_data = request.calib_data
        if precision == "int8" and calib_data is None:
            calib_data = _synthetic_calibration(request.work_dir, size)
        run_export(
            ExportConfig(
                weights=weights,
                random_weights=weights is None,
                arch=arch,
                size=size,
                fp16=precision == "fp16",
                int8=precision == "int8",
                calib_data=calib_data,
                calib_count=BENCH_CALIBRATION_CROPS,
                output_dir=request.work_dir,
                name=name,
                temporal=temporal,
            )
        )
    return path


def _current(path: str) -> bool:
    """Whether ``path`` is an export this version of fanet wrote."""
    if not (os.path.isfile(path) and os.path.isfile(sidecar_path(path))):
        return False
    try:
        return read_sidecar(path).fanet_version == __version__
    except MetadataError:
        return False


def random_module(arch: str) -> FANet:
    """The randomly initialised model the on-the-fly exports use (seed 0)."""
    return random_model(arch)


def _synthetic_calibration(work_dir: str, size: tuple[int, int]) -> str:
    """Synthetic scenes in ``work_dir``, written to a private folder and renamed whole."""
    root = os.path.join(work_dir, f"synthetic_{size[0]}x{size[1]}")
    logger.warning("INT8 calibrated on synthetic scenes (no --calib-data): speed figures only")
    with stem_lock(root):
        if os.path.isdir(root):
            return root
        staging = tempfile.mkdtemp(prefix="." + os.path.basename(root) + ".", dir=work_dir)
        try:
            write_cityscapes(staging, "train", BENCH_CALIBRATION_CROPS, seed=0, size=size)
            os.rename(staging, root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return root
