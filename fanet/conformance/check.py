"""Would TensorRT X build this ONNX graph, and compute what it says? (Python 3.6 compatible)

ONNX Runtime runs graphs TensorRT's parser rejects, so a graph ONNX Runtime accepts proves
nothing about TensorRT. :func:`check_graph` reads a graph against the rules of one TensorRT
version (``fanet.conformance.rules``, built from the parser's own documentation, importers
and ``NvInfer.h``) and lists every node that version would reject, or whose numerics it
would change, with the op, the offending attribute or type, and the rule's source.
``fanet-export`` checks every graph it writes; ``fanet-build`` checks before parsing.
"""

import logging
import os
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence

import numpy as np

from fanet.conformance.rules import (
    RESIZE_COORDINATES,
    RESIZE_MODES,
    RESIZE_NEAREST,
    Generation,
    Version,
    generation,
)
from fanet.core.attention_islands import OVERFLOW_PRONE_OPS, IslandError, attention_islands
from fanet.core.errors import FanetError
from fanet.core.onnx_graph import (
    DOUBLE,
    FLOAT,
    FLOAT16,
    INT8,
    INT32,
    INT64,
    UINT8,
    Graph,
    Node,
    Tensor,
    dtype_name,
    infer_dtypes,
    producers,
    read_model,
)

logger = logging.getLogger(__name__)

REJECTED = "rejected"
NUMERICS = "numerics"
_AXES_INPUT = {"Slice": 3, "Squeeze": 1, "Unsqueeze": 1}
_REDUCE_AXES_OPSET = 18  # Reduce* take their axes as an input from opset 18


_TYPED_BY_OUTPUT = ("ConstantOfShape",)


class Finding(NamedTuple):
    """One node TensorRT would reject (``kind == "rejected"``) or compute differently."""

    node: str
    op: str
    rule: str
    detail: str
    source: str
    kind: str = REJECTED

    def __str__(self) -> str:
        where = "{} ({})".format(self.node, self.op) if self.node else "model"
        return "{}: {} [{}: {}]".format(where, self.detail, self.rule, self.source)


class ConformanceError(FanetError):
    """A graph that a TensorRT version would reject or compute differently."""


def version_text(version: Version) -> str:
    return "{}.{}".format(*version)


class _Checker:
    """The rules of one generation applied to one graph."""

    def __init__(self, graph: Graph, version: Version) -> None:
        self.graph = graph
        self.version = version
        self.rules: Generation = generation(version)
        self.types = infer_dtypes(graph)
        self.constants: Dict[str, Tensor] = graph.constants()
        self.producer = producers(graph)
        try:
            self.island = set(attention_islands(graph.nodes, self.constants))
        except IslandError:
            self.island = set()
        self.findings: List[Finding] = []

    def add(self, node: Optional[Node], rule: str, detail: str, source: str, kind: str = REJECTED):
        name, op = (node.name, node.op_type) if node is not None else ("", "")
        self.findings.append(Finding(name, op, rule, detail, source, kind))

    def dtype(self, name: str) -> Optional[int]:
        dtype = self.types.get(name)
        if self.rules.casts_int64 and dtype == INT64:
            return INT32  # "TensorRT will attempt to cast down INT64 to INT32"
        if self.rules.casts_int64 and dtype == DOUBLE:
            return FLOAT
        return dtype

    def is_constant(self, name: str) -> bool:
        return name in self.constants

    def run(self) -> List[Finding]:
        self.check_model()
        for node in self.graph.nodes:
            self.check_node(node)
        return self.findings

    def check_model(self) -> None:
        opset, rules = self.graph.opset, self.rules
        if not rules.min_opset <= opset <= rules.max_opset:
            self.add(
                None,
                "opset",
                "opset {} is outside TensorRT {}'s {}..{}".format(
                    opset, version_text(self.version), rules.min_opset, rules.max_opset
                ),
                rules.ops_source,
            )
        for value in list(self.graph.inputs) + list(self.graph.outputs):
            if value.dtype not in rules.io_types:
                self.add(
                    None,
                    "io-type",
                    "graph input/output {} is {}".format(value.name, dtype_name(value.dtype)),
                    rules.ops_source,
                )

    def check_node(self, node: Node) -> None:
        rules = self.rules
        if node.domain not in ("", "ai.onnx"):
            self.add(
                node,
                "domain",
                "custom domain {!r} needs a plugin".format(node.domain),
                rules.ops_source,
            )
            return
        supported = rules.ops.get(node.op_type)
        if supported is None:
            self.add(node, "operator", "not a supported operator", rules.ops_source)
            return
        # The types column means the data: ConstantOfShape's input is its shape (INT64 by
        # the ONNX spec), its data is what it outputs.
        typed = node.output if node.op_type in _TYPED_BY_OUTPUT else node.input
        data_type = self.dtype(typed[0]) if typed and typed[0] else None
        if data_type is not None and data_type not in supported:
            self.add(
                node,
                "input-type",
                "{} {} is {}; supported: {}".format(
                    "output" if typed is node.output else "input",
                    typed[0],
                    dtype_name(data_type),
                    _names(supported),
                ),
                rules.ops_source,
            )
        check = getattr(self, "check_" + node.op_type, None)
        if check is not None:
            check(node)
        self.check_fp16_overflow(node)
        self.check_constant_axes(node)

    # --- per-operator rules ---------------------------------------------------------

    def check_Cast(self, node: Node) -> None:
        target = int(node.attributes.get("to", 0))
        mapped = INT32 if self.rules.casts_int64 and target == INT64 else target
        if mapped not in self.rules.ops["Cast"]:
            self.add(
                node, "cast-type", "casts to {}".format(dtype_name(target)), self.rules.ops_source
            )

    def check_Clip(self, node: Node) -> None:
        if not self.rules.clip_bounds_constant:
            return
        for name in node.input[1:]:
            if name and not self.is_constant(name):
                self.add(
                    node,
                    "clip-bounds",
                    "min/max {} is not an initializer".format(name),
                    self.rules.importer_source,
                )

    def check_Conv(self, node: Node) -> None:
        if not self._is_weights(node.input[1]):
            self.add(
                node,
                "conv-weights",
                "weights {} are not an initializer (or Q/DQ of one)".format(node.input[1]),
                self.rules.importer_source,
            )
        if len(node.input) > 2 and node.input[2] and not self.is_constant(node.input[2]):
            self.add(
                node,
                "conv-bias",
                "bias {} is computed (here: {}); it must be a float initializer".format(
                    node.input[2], self._producer_op(node.input[2])
                ),
                self.rules.importer_source,
            )

    def check_Resize(self, node: Node) -> None:
        attrs, source = node.attributes, self.rules.ops_source
        mode = attrs.get("mode", "nearest")
        coordinates = attrs.get("coordinate_transformation_mode", "half_pixel")
        nearest = attrs.get("nearest_mode", "round_prefer_floor")
        if mode not in RESIZE_MODES:
            self.add(node, "resize-mode", "mode {!r}".format(mode), source)
        if coordinates not in RESIZE_COORDINATES:
            self.add(
                node,
                "resize-mode",
                "coordinate_transformation_mode {!r}".format(coordinates),
                source,
            )
        if mode == "nearest" and nearest not in RESIZE_NEAREST:
            self.add(node, "resize-mode", "nearest_mode {!r}".format(nearest), source)
        if int(attrs.get("antialias", 0)):
            self.add(node, "resize-mode", "antialias is not supported", source)
        if attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
            self.add(node, "resize-mode", "keep_aspect_ratio_policy must be stretch", source)
        has_sizes = len(node.input) > 3 and bool(node.input[3])
        scales = node.input[2] if len(node.input) > 2 else ""
        if not has_sizes and not (scales and self.is_constant(scales)):
            self.add(
                node,
                "resize-scales",
                "scales must be an initializer when no sizes are given",
                self.rules.importer_source,
            )

    def check_QuantizeLinear(self, node: Node) -> None:
        self._check_quantization(node)

    def check_DequantizeLinear(self, node: Node) -> None:
        self._check_quantization(node)
        data = self.producer.get(node.input[0])
        if self.rules.dequantize_from_quantize and (
            data is None or data.op_type != "QuantizeLinear"
        ):
            self.add(
                node,
                "dequantize-input",
                "reads {} directly; TensorRT {} dequantizes the INT8 output of a Quantize "
                "layer (store weights as FP32 -> QuantizeLinear -> DequantizeLinear)".format(
                    node.input[0], version_text(self.version)
                ),
                self.rules.nvinfer_source,
            )

    def _check_quantization(self, node: Node) -> None:
        rules = self.rules
        if len(node.input) < 3 or not node.input[2]:
            if rules.zero_point_required:
                self.add(node, "zero-point", "needs its zero point input", rules.importer_source)
        else:
            self._check_zero_point(node, node.input[2])
        scale = self.constants.get(node.input[1])
        if scale is None:
            self.add(
                node,
                "scale",
                "scale {} is not a build-time constant".format(node.input[1]),
                rules.nvinfer_source,
            )
            return
        if rules.casts_int64 and scale.dtype != FLOAT:
            self.add(
                node,
                "scale",
                "scale is {}; this version reads FP32 scales".format(dtype_name(scale.dtype)),
                rules.importer_source,
            )
        values = scale.values().astype(np.float64)
        if not (np.isfinite(values).all() and (values > 0).all()):
            self.add(
                node,
                "scale",
                "scale coefficients must be finite and positive",
                rules.nvinfer_source,
            )
        if values.size > 1:
            self._check_per_channel(node, values.size)

    def _check_zero_point(self, node: Node, name: str) -> None:
        zero_point = self.constants.get(name)
        source = self.rules.nvinfer_source
        if zero_point is None:
            self.add(
                node,
                "zero-point",
                "zero point {} is not a build-time constant".format(name),
                source,
            )
            return
        if zero_point.dtype == UINT8:
            kind = REJECTED if self.rules.casts_int64 else NUMERICS
            self.add(
                node,
                "zero-point",
                "UINT8 zero point: TensorRT quantizes to INT8 only",
                self.rules.importer_source,
                kind,
            )
        elif zero_point.dtype != INT8:
            self.add(
                node,
                "zero-point",
                "zero point is {}; INT8 expected".format(dtype_name(zero_point.dtype)),
                source,
            )
        if np.any(zero_point.values() != 0):
            self.add(
                node, "zero-point", "zero points must all be 0 (symmetric quantization)", source
            )

    def _check_per_channel(self, node: Node, count: int) -> None:
        source = self.rules.nvinfer_source
        weights = self._weights_root(node)
        if weights is None:
            self.add(
                node,
                "per-channel",
                "per-channel scales on an activation; only weights may be per-channel",
                source,
            )
            return
        axis = int(node.attributes.get("axis", 1))
        if axis != 0:
            self.add(
                node,
                "per-channel",
                "per-channel axis {}; Conv weights are quantized along their output "
                "channels (axis 0)".format(axis),
                source,
            )
        elif not weights.dims or weights.dims[0] != count:
            self.add(
                node,
                "per-channel",
                "{} scales for {} output channels".format(count, weights.dims[:1]),
                source,
            )

    def _weights_root(self, node: Node) -> Optional[Tensor]:
        """The initializer a Q or DQ node quantizes, if it quantizes one."""
        data = node.input[0]
        if data in self.constants:
            return self.constants[data]
        source = self.producer.get(data)
        if source is not None and source.op_type == "QuantizeLinear":
            return self.constants.get(source.input[0])
        return None

    def _is_weights(self, name: str) -> bool:
        if self.is_constant(name):
            return True
        source = self.producer.get(name)
        return (
            source is not None
            and source.op_type == "DequantizeLinear"
            and self._weights_root(source) is not None
        )

    def _producer_op(self, name: str) -> str:
        source = self.producer.get(name)
        return source.op_type if source is not None else "a graph input"

    # --- rules every op shares --------------------------------------------------------

    def check_constant_axes(self, node: Node) -> None:
        index = _AXES_INPUT.get(node.op_type)
        if node.op_type.startswith("Reduce") and self.graph.opset >= _REDUCE_AXES_OPSET:
            index = 1
        axes = node.input[index] if index is not None and len(node.input) > index else ""
        if axes and not self.is_constant(axes):
            self.add(
                node,
                "axes",
                "axes {} must be an initializer".format(axes),
                self.rules.ops_source,
            )

    def check_fp16_overflow(self, node: Node) -> None:
        attention = node.name in self.island and node.op_type in OVERFLOW_PRONE_OPS
        squares = node.op_type in ("ReduceL2", "ReduceSumSquare")
        if not (attention or squares):
            return
        fp16 = [name for name in node.input if name and self.types.get(name) == FLOAT16]
        if fp16:
            self.add(
                node,
                "fp16-overflow",
                "reads FP16 {}: {}".format(
                    ", ".join(fp16),
                    "TensorRT squares it in FP16 (overflow once |x| > 256)"
                    if squares
                    else "the fast attention's sums overflow FP16",
                ),
                "fast-attention",
                NUMERICS,
            )


def _names(types: Iterable[int]) -> str:
    return ", ".join(sorted(dtype_name(t) for t in types))


def check_graph(graph: Graph, version: Version) -> List[Finding]:
    """Every finding of TensorRT ``version``'s rules on ``graph``."""
    return _Checker(graph, version).run()


def check_versions(graph: Graph, versions: Sequence[Version]) -> Dict[Version, List[Finding]]:
    """Findings per version (empty lists where the graph conforms)."""
    return {version: check_graph(graph, version) for version in versions}


def require_conformance(
    graph: Graph,
    versions: Sequence[Version],
    label: str,
    kinds: Sequence[str] = (REJECTED, NUMERICS),
) -> None:
    """Raise ``ConformanceError`` naming the first nodes that break a rule of ``kinds``."""
    for version, findings in check_versions(graph, versions).items():
        _raise_for(findings, version, label, kinds)


def _raise_for(
    findings: Sequence[Finding], version: Version, label: str, kinds: Sequence[str]
) -> None:
    relevant = [f for f in findings if f.kind in kinds]
    if relevant:
        shown = "; ".join(str(f) for f in relevant[:3])
        more = " (and {} more)".format(len(relevant) - 3) if len(relevant) > 3 else ""
        raise ConformanceError(
            "{} would not build as intended with TensorRT {}: {}{}".format(
                label, version_text(version), shown, more
            )
        )


def buildable_graph(path: str, version: Version) -> Graph:
    """The graph at ``path``; ``ConformanceError`` naming the nodes TensorRT ``version``
    would reject, and a warning for each node whose numerics it would change."""
    graph = read_model(path)
    findings = check_graph(graph, version)
    _raise_for(findings, version, path, (REJECTED,))
    for finding in findings:
        logger.warning("%s: %s", os.path.basename(path), finding)
    return graph
