"""One export in progress: its settings, its artefact set, the sidecar its graphs share,
the files staged so far and the TensorRT versions they must conform to (host side).

Every graph goes through the same steps: checked against the parser rules of each
targeted TensorRT that reads it, stamped with the sidecar's essentials, staged, run
against its reference, and given its sidecar.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from fanet.conformance.check import require_conformance, version_text
from fanet.conformance.rules import serves
from fanet.core.artefact_set import CONSUMERS, ArtefactSet, variant_of
from fanet.core.files import sha256_file
from fanet.core.onnx_graph import parse_model
from fanet.core.set_writer import SetWriter
from fanet.core.sidecar import Sidecar, sidecar_path, write_sidecar
from fanet.export.config import ExportConfig
from fanet.export.onnx_export import GraphForm, export_onnx, save_model, set_metadata
from fanet.export.verify import agreement_with, log_agreement, require_finite, verify_fp32
from fanet.model.fanet import FANet

logger = logging.getLogger(__name__)

AGREEMENT_WARNING = 0.97  # label agreement with FP32 below which a lower precision is suspect


@dataclass
class ExportedFile:
    """One written graph: its path, precision, variant and measured agreement (and, on
    the first INT8 graph, the INT8 budget report)."""

    path: str
    precision: str
    agreement: dict[str, float] = field(default_factory=dict)
    variant: str = ""
    report: dict[str, Any] | None = None  # what fitting --int8-budget measured

    def __post_init__(self) -> None:
        self.variant = self.variant or variant_of(self.path)


@dataclass(frozen=True)
class Variant:
    """A lower-precision graph to write, and what its sidecar says of how it was made."""

    proto: onnx.ModelProto
    variant: str  # "fp16", "int8", "int8_fp16" or "int8_onnxruntime"
    precision: str
    recipe: dict[str, Any] = field(default_factory=dict)  # quantizer, calibration, islands
    io_dtype: str = "float32"
    opset: int | None = None  # the graph's own, where it differs from the export's


class ExportRun:
    """The export of ``config`` into the set at ``artefacts``, staged in ``files``."""

    def __init__(
        self, config: ExportConfig, artefacts: ArtefactSet, common: Sidecar, files: SetWriter
    ) -> None:
        self.config = config
        self.artefacts = artefacts
        self.common = common  # what every graph's sidecar shares
        self.files = files
        self.targets = config.targets()

    @property
    def fp32_path(self) -> str:
        return self.artefacts.graph("fp32")

    def staged(self, path: str) -> str:
        """Where ``path``'s content is now (its temporary name until the commit)."""
        return self.files.current(path)

    def write_fp32(self, model: FANet) -> ExportedFile:
        """Export ``model``, check it against PyTorch; all later graphs are made from it."""
        config, path = self.config, self.fp32_path
        checked: list[str] = []

        def prepare(proto: onnx.ModelProto) -> None:
            checked[:] = self._conform(proto, path)
            set_metadata(proto, self.common._replace(precision="fp32").props())

        form = GraphForm(
            config.size,
            config.opset,
            config.output,
            config.full_res,
            config.temporal,
            config.temporal_reduce,
            config.max_batch > 1,
        )
        export_onnx(model, self.files.stage(path), form, prepare)
        exported = ExportedFile(
            path, "fp32", verify_fp32(model, self.staged(path), config, self.common)
        )
        log_agreement(path, "PyTorch", exported.agreement)
        provenance = self.common.provenance._replace(fp32_sha256=sha256_file(self.staged(path)))
        self.common = self.common._replace(provenance=provenance)
        self._write_sidecar(exported, self.common, reference="pytorch", tensorrt_checked=checked)
        return exported

    def write_variant(self, variant: Variant, batches: list[np.ndarray]) -> ExportedFile:
        """Check a lower-precision graph, stage it, measure it against the FP32 graph on
        ``batches`` and write its sidecar."""
        path = self.artefacts.graph(variant.variant)
        checked = (
            self._conform(variant.proto, path) if "tensorrt" in CONSUMERS[variant.variant] else []
        )
        sidecar = self.common._replace(precision=variant.precision)
        if variant.opset is not None:
            sidecar = sidecar._replace(opset=variant.opset)
        set_metadata(variant.proto, sidecar.props())
        save_model(variant.proto, self.files.stage(path))
        agreement = agreement_with(self.staged(self.fp32_path), self.staged(path), batches, sidecar)
        require_finite(path, "the FP32 graph", agreement)
        exported = ExportedFile(path, variant.precision, agreement)
        log_agreement(path, "FP32 ONNX", agreement)
        self._warn_if_far(exported)
        provenance = sidecar.provenance._replace(io_dtype=variant.io_dtype, recipe=variant.recipe)
        self._write_sidecar(
            exported,
            sidecar._replace(provenance=provenance),
            reference="fp32 onnx",
            tensorrt_checked=checked,
        )
        return exported

    def _warn_if_far(self, exported: ExportedFile) -> None:
        """A warning for a trained model's graph whose labels stray from the FP32 graph's."""
        agreeing = exported.agreement.get("argmax_agreement", 1.0)
        if self.config.random_weights or agreeing >= AGREEMENT_WARNING:
            return
        logger.warning(
            "%s agrees with the FP32 graph on only %.1f %% of pixels (below %.0f %%): check "
            "that the calibration images (--calib-data) look like what the robot sees, or "
            "use --fp16",
            os.path.basename(exported.path),
            100 * agreeing,
            100 * AGREEMENT_WARNING,
        )

    def _conform(self, proto: onnx.ModelProto, path: str) -> list[str]:
        """Refuse ``proto`` if a targeted TensorRT that reads its opset would reject it;
        the versions it was checked for."""
        graph = parse_model(proto.SerializeToString())
        served = [version for version in self.targets if serves(version, graph.opset)]
        require_conformance(graph, served, os.path.basename(path))
        return [version_text(v) for v in served]

    def _write_sidecar(
        self, exported: ExportedFile, sidecar: Sidecar, reference: str, tensorrt_checked: list
    ) -> None:
        """``sidecar`` with this graph's precision, consumer, agreement and hash."""
        provenance = sidecar.provenance._replace(
            consumer=CONSUMERS[exported.variant],
            agreement=exported.agreement,
            onnx_sha256=sha256_file(self.staged(exported.path)),
            reference=reference,
            tensorrt_checked=tuple(tensorrt_checked),
        )
        record = sidecar._replace(precision=exported.precision, provenance=provenance)
        write_sidecar(exported.path, record, to=self.files.stage(sidecar_path(exported.path)))
