"""torch -> ONNX: BatchNorm folded, discarded branches absent, fixed tensor names (host side)."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from fanet.core.files import atomic_write, final_name
from fanet.core.sidecar import INPUT_NAME
from fanet.export.errors import ExportError
from fanet.model import fuse_bn
from fanet.model.fanet import FANet
from fanet.model.temporal import TemporalFANet

if TYPE_CHECKING:
    import onnx

logger = logging.getLogger(__name__)

OUTPUT_KINDS = ("logits", "labels")
SUPPORTED_OPSETS = range(13, 21)
# Shape of the example input when the graph has dynamic height and width.
DYNAMIC_EXAMPLE_SIZE = (256, 512)


class DeployableFANet(nn.Module):
    """A BN-folded FANet with the requested output: 1/8 logits or int32 labels.

    With a ``window`` of t > 1 frames it is temporal (``fanet.model.temporal``):
    ``forward(x, *state)`` returns ``(output, *next_state)``.
    """

    def __init__(
        self,
        model: FANet,
        output: str = "logits",
        full_res: bool = False,
        window: int = 1,
        reduce: str = "mean",
    ) -> None:
        super().__init__()
        if output not in OUTPUT_KINDS:
            raise ExportError(f"unknown output {output!r}; choose one of: logits, labels")
        if full_res and output != "labels":
            raise ExportError("full-resolution output needs --output labels")
        self.net = TemporalFANet(fuse_bn(model), window, reduce)
        self.output = output
        self.full_res = full_res

    def state_names(self) -> list[tuple[str, str]]:
        """(input, output) names of the state tensors, in I/O order (none for one frame)."""
        return self.net.state_names()

    def initial_state(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.initial_state(x)

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> Any:
        logits, *following = self.net(x, *state)
        if self.output == "logits":
            result = logits
        else:
            if self.full_res:
                logits = F.interpolate(
                    logits, size=x.shape[-2:], mode="bilinear", align_corners=True
                )
            result = torch.argmax(logits, dim=1).to(torch.int32)
        return (result, *following) if following else result


@dataclass(frozen=True)
class GraphForm:
    """The form of an exported graph: ``size=None`` makes height and width dynamic,
    ``dynamic_batch`` the batch axis of every input and output."""

    size: tuple[int, int] | None
    opset: int = 17
    output: str = "logits"  # or "labels"
    full_res: bool = False  # labels at the input's size (else 1/8)
    window: int = 1  # frames the attention spans
    reduce: str = "mean"  # over the window: "mean" or "sum"
    dynamic_batch: bool = False


def export_onnx(
    model: FANet,
    path: str,
    form: GraphForm,
    prepare: Callable[[onnx.ModelProto], None] | None = None,
) -> None:
    """Write ``model`` as ONNX of ``form`` to ``path``.

    The graph's input is ``input`` (1 x 3 x H x W float32, normalised RGB); its output is
    ``logits`` (1 x classes x H/8 x W/8 float32) or ``labels`` (int32). A ``window`` of
    t > 1 frames adds the temporal state: inputs ``state_<module>`` (and ``state_valid``
    for ``mean``) and outputs ``state_<module>_out``, FP32. The file is checked with
    ``onnx.checker`` and handed to ``prepare`` (further checks, metadata) before it
    replaces anything at ``path``.
    """
    import onnx  # noqa: F811  (lazy: importing this module does not need onnx)

    size, opset, output = form.size, form.opset, form.output
    if opset not in SUPPORTED_OPSETS:
        raise ExportError(f"opset {opset} is not supported; choose 13..20 (13 for TensorRT 8.2)")
    deployable = DeployableFANet(model, output, form.full_res, form.window, form.reduce).eval()
    height, width = size or DYNAMIC_EXAMPLE_SIZE
    example = torch.zeros(1, 3, height, width)
    examples = (example, *deployable.initial_state(example))
    names = deployable.state_names()
    input_names = [INPUT_NAME, *(state_in for state_in, _ in names)]
    output_names = [output, *(state_out for _, state_out in names)]
    dynamic_axes: dict[str, dict[int, str]] = {name: {} for name in input_names + output_names}
    if size is None:
        dynamic_axes[INPUT_NAME] = {2: "height", 3: "width"}
        dynamic_axes[output] = {2: "out_height", 3: "out_width"}
        if output == "labels":
            dynamic_axes[output] = {1: "out_height", 2: "out_width"}
    if form.dynamic_batch:
        for axes in dynamic_axes.values():
            axes[0] = "batch"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        varying = {name: named for name, named in dynamic_axes.items() if named} or None
        proto = _export_to_proto(deployable, examples, opset, input_names, output_names, varying)
    _inline_shared_initializers(proto.graph)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"exported graph fails onnx.checker: {exc}") from None
    if prepare is not None:
        prepare(proto)
    save_model(proto, path)
    logger.info(
        "exported %s (opset %d, %s)",
        final_name(os.fspath(path)),
        opset,
        "dynamic H/W" if size is None else f"{height}x{width}",
    )


def _export_to_proto(module, examples, opset, input_names, output_names, dynamic_axes):
    import io

    import onnx

    buffer = io.BytesIO()
    torch.onnx.export(
        module,
        examples,
        buffer,  # type: ignore[arg-type]  # the TorchScript exporter accepts file objects
        dynamo=False,
        opset_version=opset,
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic_axes,
        do_constant_folding=True,
    )
    return onnx.load_from_string(buffer.getvalue())


def replace_nodes_by_initializers(graph, constant_of) -> None:
    """Turn every node for which ``constant_of(node, initializers)`` gives a TensorProto
    into an initializer named after the node's output."""
    from onnx import TensorProto

    initializers = {tensor.name: tensor for tensor in graph.initializer}
    keep = []
    for node in graph.node:
        constant = constant_of(node, initializers)
        if constant is None:
            keep.append(node)
            continue
        tensor = TensorProto()
        tensor.CopyFrom(constant)
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
    del graph.node[:]
    graph.node.extend(keep)


def _inline_shared_initializers(graph) -> None:
    """Replace ``Identity(initializer)`` nodes (the exporter's de-duplication of equal
    tensors, e.g. zero biases) by initializers, so every Conv has constant weights."""
    replace_nodes_by_initializers(
        graph,
        lambda node, initializers: (
            initializers.get(node.input[0]) if node.op_type == "Identity" else None
        ),
    )


def set_metadata(proto, props: dict[str, str]) -> None:
    """Replace the ``metadata_props`` of ``proto`` whose keys ``props`` has."""
    kept = [entry for entry in proto.metadata_props if entry.key not in props]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in sorted(props.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def save_model(proto, path: str) -> None:
    """Serialise an ONNX ``ModelProto`` to ``path`` atomically."""
    with atomic_write(os.fspath(path)) as stream:
        stream.write(proto.SerializeToString())
