"""A Triton Inference Server model repository for an export or an engine (Python 3.6).

``write_model(repo, model_path)`` adds ``<repo>/<name>/config.pbtxt`` and
``<repo>/<name>/1/model.onnx`` (``onnxruntime_onnx``) or ``model.plan`` (``tensorrt_plan``),
with the tensor names, shapes and data types of the graph's sidecar (an engine's record
holds it): a graph exported with ``--max-batch N`` gets ``max_batch_size: N`` and dynamic
batching; a temporal graph a sequence batcher whose implicit state keeps each stream's
attention state on the server, zeros at a sequence's start. ``instance_group`` sets how many
copies of the model run side by side. The text is Triton's protobuf text format, written
without protobuf (the device side has none); the tests parse it with Triton's own
``model_config_pb2``.
"""

import json
import logging
import os
import shutil
import tempfile
import time
from typing import List, NamedTuple, Optional, Sequence, Tuple

from fanet.core.errors import FanetError
from fanet.core.files import STALE_PART_SECONDS, write_failure
from fanet.core.names import check_name
from fanet.core.sidecar import Sidecar

logger = logging.getLogger(__name__)

CONFIG = "config.pbtxt"
STAGING = ".staging"  # a model folder being written: ".<name>.XXXXXXXX.staging"
KINDS = ("gpu", "cpu")
_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int32": "TYPE_INT32"}


class TritonError(FanetError):
    """A model repository cannot be written."""


class Placement(NamedTuple):
    """Where a model goes in the repository and how many copies of it run."""

    name: Optional[str] = None  # None: the model file's stem
    instances: int = 1
    kind: str = "gpu"  # or "cpu"


class TritonModel(NamedTuple):
    """What one model of the repository is: its name, backend platform and sidecar."""

    name: str
    platform: str  # "onnxruntime_onnx" or "tensorrt_plan"
    sidecar: Sidecar
    instances: int = 1
    kind: str = "gpu"
    max_queue_delay_us: int = 2000
    max_sequence_idle_us: int = 5_000_000


def config_text(model: TritonModel) -> str:
    """The model's ``config.pbtxt``."""
    sidecar = model.sidecar
    batched = sidecar.max_batch > 1
    lead = [] if batched else [1]  # a fixed batch of one is part of the shape
    height, width = sidecar.input_size or (-1, -1)
    io_dtype = sidecar.provenance.io_dtype
    lines = [
        'name: "{}"'.format(model.name),
        'platform: "{}"'.format(model.platform),
        "max_batch_size: {}".format(sidecar.max_batch if batched else 0),
        "input [",
        _tensor(sidecar.input_name, io_dtype, lead + [3, height, width]),
        "]",
        "output [",
        _tensor(sidecar.output_tensor, *_output(sidecar, lead, io_dtype)),
        "]",
        "instance_group [",
        "  {{ count: {} kind: {} }}".format(model.instances, "KIND_" + model.kind.upper()),
        "]",
    ]
    lines += _parameters(sidecar)
    if sidecar.state:
        lines += _sequence_batching(sidecar, batched, model.max_sequence_idle_us)
    elif batched:
        lines.append(
            "dynamic_batching {{ max_queue_delay_microseconds: {} }}".format(
                model.max_queue_delay_us
            )
        )
    return "\n".join(lines) + "\n"


def _output(sidecar: Sidecar, lead: List[int], io_dtype: str) -> Tuple[str, List[int]]:
    """The output's data type and dims (logits at 1/8, or int32 labels)."""
    height, width = sidecar.input_size or (-1, -1)
    stride = sidecar.output_stride
    size = [_divided(height, stride), _divided(width, stride)]
    if sidecar.output == "labels":
        return "int32", lead + size
    return io_dtype, lead + [sidecar.num_classes] + size


def _divided(side: int, stride: int) -> int:
    """The side of a map at ``1/stride`` (each stride-2 layer rounds up)."""
    return -1 if side < 0 else -(-side // stride)


def _tensor(name: str, dtype: str, dims: Sequence[int]) -> str:
    return '  {{ name: "{}" data_type: {} dims: [ {} ] }}'.format(
        name, _TYPES[dtype], ", ".join(str(d) for d in dims)
    )


def _parameters(sidecar: Sidecar) -> List[str]:
    """What a client needs to feed and read the model, as ``fanet.*`` parameters (JSON)."""
    record = sidecar.to_json()
    names = ("arch", "num_classes", "mean", "std", "output", "output_stride", "temporal")
    lines = []
    for name in names:
        value = json.dumps(record[name]).replace("\\", "\\\\").replace('"', '\\"')
        lines.append(
            'parameters {{ key: "fanet.{}" value {{ string_value: "{}" }} }}'.format(name, value)
        )
    return lines


def _sequence_batching(sidecar: Sidecar, batched: bool, idle_us: int) -> List[str]:
    """Implicit state: Triton feeds each state output back as the next request's input
    of the same sequence, zeros at its start; ``direct`` keeps a sequence in one slot."""
    lines = ["sequence_batching {", "  max_sequence_idle_microseconds: {}".format(idle_us)]
    lines += ["  direct { }", "  state ["]
    for index, tensor in enumerate(sidecar.state):
        dims = ", ".join(str(d) for d in (tensor.shape[1:] if batched else tensor.shape))
        lines += [
            "    {",
            '      input_name: "{}"'.format(tensor.input),
            '      output_name: "{}"'.format(tensor.output),
            "      data_type: {}".format(_TYPES[tensor.dtype]),
            "      dims: [ {} ]".format(dims),
            "      initial_state [",
            "        {{ data_type: {} dims: [ {} ]".format(_TYPES[tensor.dtype], dims),
            '          zero_data: true name: "no earlier frame" }',
            "      ]",
            "    }" + ("," if index + 1 < len(sidecar.state) else ""),
        ]
    return lines + ["  ]", "}"]


def check_repository(repo: str, force: bool) -> None:
    """``TritonError`` for a non-empty folder that is not a model repository (unless
    ``force``): every entry of one is a model folder holding a ``config.pbtxt``."""
    if not os.path.exists(repo):
        return
    if not os.path.isdir(repo):
        raise TritonError("{} is a file, not a model repository folder".format(repo))
    strangers = [
        entry
        for entry in sorted(os.listdir(repo))
        if not entry.startswith(".") and not os.path.isfile(os.path.join(repo, entry, CONFIG))
    ]
    if strangers and not force:
        raise TritonError(
            "{} is not empty and not a Triton model repository ({} has no {}): choose "
            "another folder, or pass --force to write into it".format(repo, strangers[0], CONFIG)
        )


def write_model(
    repo: str,
    model_path: str,
    sidecar: Sidecar,
    placement: Placement = Placement(),
    force: bool = False,
) -> str:
    """Add the model at ``model_path`` (an .onnx or an engine) to ``repo``; returns its
    folder. Its files appear together: staged beside it, then renamed into place."""
    name, instances, kind = placement
    if kind not in KINDS:
        raise TritonError("unknown instance kind {!r}; choose gpu or cpu".format(kind))
    if instances < 1:
        raise TritonError("--triton-instances must be at least 1, got {}".format(instances))
    check_repository(repo, force)
    is_onnx = model_path.lower().endswith(".onnx")
    option = "--name"
    if name is None:
        name = os.path.splitext(os.path.basename(model_path))[0]
        option = "the model's name (its file's stem; or give --name)"
    check_name(name, option)
    model = TritonModel(
        name, "onnxruntime_onnx" if is_onnx else "tensorrt_plan", sidecar, instances, kind
    )
    folder = os.path.join(repo, name)
    if os.path.exists(folder) and not force:
        raise TritonError(
            "{} holds a model {!r} already: pass --force to replace it".format(repo, name)
        )
    staging = ""
    try:
        os.makedirs(repo, exist_ok=True)
        _remove_stale_staging(repo)
        staging = tempfile.mkdtemp(prefix="." + name + ".", suffix=STAGING, dir=repo)
        os.makedirs(os.path.join(staging, "1"))
        target = "model.onnx" if is_onnx else "model.plan"
        shutil.copyfile(model_path, os.path.join(staging, "1", target))
        with open(os.path.join(staging, CONFIG), "w") as stream:
            stream.write(config_text(model))
        _replace(staging, folder)
    except OSError as exc:  # a full disk, a protected folder: the model's folder is named
        raise write_failure(exc, folder) from None
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def _remove_stale_staging(repo: str) -> None:
    """Remove the staging folders killed runs left in ``repo`` (an hour old or more)."""
    now = time.time()
    for entry in os.listdir(repo):
        path = os.path.join(repo, entry)
        stale = entry.startswith(".") and entry.endswith((STAGING, STAGING + ".previous"))
        if stale and os.path.isdir(path) and now - os.path.getmtime(path) > STALE_PART_SECONDS:
            shutil.rmtree(path, ignore_errors=True)
            logger.info("removed %s, left by a killed run", path)


def _replace(staging: str, folder: str) -> None:
    """Put ``staging`` at ``folder``, the previous model removed only once it is there."""
    if not os.path.exists(folder):
        os.rename(staging, folder)
        return
    retired = staging + ".previous"
    os.rename(folder, retired)
    os.rename(staging, folder)
    shutil.rmtree(retired, ignore_errors=True)
