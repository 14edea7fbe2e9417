"""An export's files as one object: its graphs, their sidecars, its calibration caches and
the engines built from it (Python 3.6 compatible).

``fanet-export`` writes, for a stem such as ``out/fanet18_512x1024``, the FP32 graph
``out/fanet18_512x1024.onnx`` and beside it the graphs of other precisions (variants), each
with a ``.json`` sidecar. ``ArtefactSet`` finds such a set in a folder or from any of its
graphs, picks the graph a backend runs for a precision, checks that the set was made from
one FP32 graph, and names what is missing and the command that makes it. Every command
goes through it; ``fanet.core.set_writer`` writes a set.
"""

import glob
import logging
import os
from typing import Dict, List, Optional

from fanet.core.errors import ConfigError
from fanet.core.sidecar import MetadataError, Sidecar, read_sidecar, sidecar_path

logger = logging.getLogger(__name__)

# The graphs one export writes, by variant. Each sidecar's ``consumer`` says who reads it:
# ``_int8`` is TensorRT's Q/DQ form (FP32 float parts: weakly typed builds on 8.x-10.x),
# ``_int8_fp16`` the same with FP16 float parts (strongly typed builds, opset >= 19),
# ``_int8_onnxruntime`` the form ONNX Runtime's CPU provider runs as integer kernels.
VARIANT_SUFFIXES = {
    "fp32": "",
    "fp16": "_fp16",
    "int8": "_int8",
    "int8_fp16": "_int8_fp16",
    "int8_onnxruntime": "_int8_onnxruntime",
}
CONSUMERS = {
    "fp32": "tensorrt, onnxruntime",
    "fp16": "tensorrt (strongly typed), onnxruntime",
    "int8": "tensorrt",
    "int8_fp16": "tensorrt (strongly typed)",
    "int8_onnxruntime": "onnxruntime",
}
EXPORT_FLAGS = {"fp32": "", "fp16": " --fp16", "int8": " --int8 --calib-data DIR"}
DEFAULT_SIZE = (512, 1024)  # fanet-export's --res, fanet-trt-bench's and the paper's


def variant_for(backend: str, precision: str) -> str:
    """The exported graph a ``backend`` runs for ``precision``: ONNX Runtime's INT8 is its
    own Q/DQ form; OpenVINO's FP16 is the FP32 graph run at FP16 (its INT8 is TensorRT's
    Q/DQ graph, as exported)."""
    if backend == "onnxruntime" and precision == "int8":
        return "int8_onnxruntime"
    if backend == "openvino" and precision == "fp16":
        return "fp32"
    return precision


def variant_of(onnx_path: str) -> str:
    """``out/fanet18_512x1024_int8_fp16.onnx`` -> ``"int8_fp16"`` (``"fp32"`` for none)."""
    stem = os.path.splitext(onnx_path)[0]
    by_length = sorted(VARIANT_SUFFIXES.items(), key=lambda item: len(item[1]), reverse=True)
    return next(variant for variant, suffix in by_length if stem.endswith(suffix))


def _plain(sidecar: Sidecar) -> bool:
    """A single-frame graph with logits, for one image at a time."""
    return sidecar.temporal == 1 and sidecar.output == "logits" and sidecar.max_batch == 1


def _default_size(sidecar: Sidecar) -> bool:
    return sidecar.input_size == DEFAULT_SIZE


class ArtefactSet:
    """The files of the export at ``stem`` (``out/fanet18_512x1024``)."""

    def __init__(self, stem: str) -> None:
        self.stem = stem

    @classmethod
    def of(cls, graph: str) -> "ArtefactSet":
        """The set ``graph`` (any of its variants) belongs to."""
        stem = os.path.splitext(graph)[0]
        suffix = VARIANT_SUFFIXES[variant_of(graph)]
        return cls(stem[: len(stem) - len(suffix)])

    @classmethod
    def find(cls, folder: str = ".", temporal: Optional[int] = None) -> Optional["ArtefactSet"]:
        """The export in ``folder`` a command runs when given none, by one rule: a plain
        FP32 export (single-frame, logits, batch of one) rather than a special one (a
        temporal, labels-output or batched graph) unless only special ones are there; of
        the default size (512x1024) rather than another; the newest of what is left (its
        FP32 graph's time; a tie goes to the first name). ``temporal``: only exports whose
        attention spans that many frames. None where there is no such export; the choice
        and the other candidates are logged in one line."""
        graphs = sorted(glob.glob(os.path.join(glob.escape(folder), "*.onnx")))
        sidecars = {
            path: read_sidecar(path) for path in graphs if os.path.isfile(sidecar_path(path))
        }
        exports = [
            path
            for path, sidecar in sidecars.items()
            if sidecar.precision == "fp32" and temporal in (None, sidecar.temporal)
        ]
        preferred = exports
        for rule in (_plain, _default_size):
            preferred = [path for path in preferred if rule(sidecars[path])] or preferred
        if not preferred:
            return None
        chosen = max(preferred, key=os.path.getmtime)  # max keeps the first of equals
        others = [os.path.basename(path) for path in exports if path != chosen]
        logger.info(
            "model: %s (of the exports in %s%s)",
            chosen,
            os.path.abspath(folder),
            "; also there: {}: pass --onnx to choose".format(", ".join(others)) if others else "",
        )
        return cls.of(chosen)

    def graph(self, variant: str) -> str:
        """Where the ``variant`` graph is, or would be."""
        return self.stem + VARIANT_SUFFIXES[variant] + ".onnx"

    def graphs(self) -> Dict[str, str]:
        """The graphs present, by variant (``{"fp32": ..., "int8": ...}``)."""
        present = {variant: self.graph(variant) for variant in VARIANT_SUFFIXES}
        return {variant: path for variant, path in present.items() if os.path.isfile(path)}

    def sidecar(self, variant: str) -> Sidecar:
        return read_sidecar(self.graph(variant))

    @property
    def tensorrt_cache(self) -> str:
        """The INT8 calibration cache TensorRT's implicit calibration reads."""
        return self.stem + "_int8.calib.cache"

    @property
    def ranges_cache(self) -> str:
        """The calibration ranges ``fanet-export --int8`` keeps (unless --calib-cache)."""
        return self.stem + "_int8.calib.json"

    def engine(self, precision: str) -> str:
        """Where ``fanet-build`` puts the set's engine of ``precision`` by default."""
        return "{}_{}.engine".format(self.stem, precision)

    def files(self) -> List[str]:
        """Every file an export of this stem may write: graphs, sidecars, caches."""
        graphs = [self.graph(variant) for variant in VARIANT_SUFFIXES]
        caches = [self.tensorrt_cache, self.ranges_cache]
        return graphs + [sidecar_path(graph) for graph in graphs] + caches

    def graph_for(self, backend: str, precision: str) -> str:
        """The graph ``backend`` runs for ``precision``. TensorRT builds every precision
        from the set, so it gets the FP32 graph; ONNX Runtime runs the precision's own
        graph (for INT8 its CPU form, else TensorRT's with a warning). A graph made from
        another FP32 graph than the one beside is refused, as is a missing one, with the
        export that makes it."""
        graphs = self.graphs()
        wanted = "fp32" if backend == "tensorrt" else variant_for(backend, precision)
        if wanted == "int8_onnxruntime" and wanted not in graphs and "int8" in graphs:
            logger.warning(
                "no %s graph: running TensorRT's INT8 form (slower on ONNX Runtime)", wanted
            )
            wanted = "int8"
        if wanted not in graphs:
            raise ConfigError(
                "no {} graph beside {}: run fanet-export{}".format(
                    wanted, self.graph("fp32"), EXPORT_FLAGS.get(precision, "")
                )
            )
        self.check(wanted)
        return graphs[wanted]

    def made_from(self, variant: str) -> Optional[str]:
        """The sha256 of the FP32 graph the ``variant`` graph's sidecar says it was made
        from (None: no sidecar, or one without that record)."""
        if not os.path.isfile(sidecar_path(self.graph(variant))):
            return None
        try:
            return self.sidecar(variant).provenance.fp32_sha256
        except MetadataError:
            return None

    def check(self, variant: str) -> None:
        """Refuse a ``variant`` graph made from another FP32 graph than the one beside
        (as far as both sidecars tell)."""
        if variant == "fp32" or not os.path.isfile(sidecar_path(self.graph("fp32"))):
            return
        made_from = self.made_from(variant)
        fp32 = self.sidecar("fp32").provenance.onnx_sha256
        if made_from and fp32 and made_from != fp32:
            raise ConfigError(
                "{} was made from another FP32 graph than {}: export the set again".format(
                    self.graph(variant), self.graph("fp32")
                )
            )
