"""Is an ONNX file a FANet graph? Asked before a benchmark reports its figures as FANet's
(Python 3.6 compatible)."""

import os
from typing import Optional

from fanet.core.attention_islands import attention_islands
from fanet.core.errors import FanetError
from fanet.core.onnx_graph import read_metadata_props, read_model
from fanet.core.sidecar import PROPS_PREFIX, sidecar_path


def why_not_fanet(onnx_path: str) -> Optional[str]:
    """None for a FANet graph: one with a sidecar, with fanet's metadata inside, or with
    fast-attention blocks on a 3-channel image input; else why it is not one."""
    if os.path.isfile(sidecar_path(onnx_path)):
        return None
    if any(key.startswith(PROPS_PREFIX) for key in read_metadata_props(onnx_path)):
        return None
    graph = read_model(onnx_path)
    image_inputs = [i for i in graph.inputs if len(i.shape) == 4 and i.shape[1] == 3]
    try:
        blocks = attention_islands(graph.nodes, graph.constants())
    except FanetError:
        blocks = []
    if image_inputs and blocks:
        return None
    return "{} has no sidecar, no fanet metadata{}".format(
        onnx_path,
        " and no fast-attention block" if image_inputs else " and no N x 3 x H x W image input",
    )
