"""Explicit INT8: activation ranges from ONNX Runtime, Q/DQ pairs inserted (host side).

Symmetric int8 with zero point 0, per-channel weight scales on every Conv and per-tensor
activation scales: the Q/DQ form TensorRT 8.0-11 builds. The attention MatMuls stay
float (their unnormalised sums have no stable range).

Every Conv reads its input through a Q/DQ pair of its own (see
``dedicate_quantized_inputs``): ONNX Runtime's CPU provider runs a Conv as a true
integer ``QLinearConv`` only then; TensorRT reads either form.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator

import numpy as np

from fanet.calibration.cache import Ranges
from fanet.core.files import OutputError, free_space_text, private_folder, write_failure
from fanet.core.sidecar import INPUT_NAME
from fanet.export.errors import ExportError

logger = logging.getLogger(__name__)

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
QUANTIZED_OPS = ["Conv"]
SCRATCH_COPIES = 2.2  # ONNX Runtime's -inferred.onnx and augmented.onnx, with room to spare


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    return {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[name]


class _Feeds:
    """ONNX Runtime CalibrationDataReader over the graph's inputs: a preprocessed crop, or
    a dict holding it and the rest of the graph's inputs (a temporal graph's state)."""

    def __init__(self, feeds: Iterable[np.ndarray | dict[str, np.ndarray]]) -> None:
        self._feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed = next(self._feeds, None)
        if feed is None or isinstance(feed, dict):
            return feed
        return {INPUT_NAME: feed}


def calibrate_ranges(
    fp32_path: str,
    feeds: Iterable[np.ndarray | dict[str, np.ndarray]],
    methods: Iterable[str] = ("minmax",),
) -> dict[str, Ranges]:
    """Activation ranges of every float tensor of ``fp32_path`` over ``feeds`` (crops, or
    dicts of every input), by each of ``methods``, from one pass over the feeds."""
    from onnxruntime.quantization.calibrate import create_calibrator

    methods = list(methods)
    unknown = [method for method in methods if method not in CALIBRATION_METHODS]
    if unknown:
        raise ExportError(
            f"unknown calibration method {unknown[0]!r}; choose one of: "
            f"{', '.join(CALIBRATION_METHODS)}"
        )
    with scratch_folder("fanet-calib-", fp32_path) as scratch:
        calibrator = create_calibrator(  # its graph outputs every tensor to calibrate
            _linked_into(scratch, fp32_path),
            QUANTIZED_OPS,
            augmented_model_path=os.path.join(scratch, "augmented.onnx"),
            calibrate_method=_method("entropy"),
            extra_options={"symmetric": True},
        )
        collectors = _Collectors(calibrator.tensors_to_calibrate, methods)
        session = calibrator.infer_session
        names = [output.name for output in session.get_outputs()]
        reader = _Feeds(feeds)
        feed = reader.get_next()
        while feed is not None:
            collectors.add(dict(zip(names, session.run(None, feed))))
            feed = reader.get_next()
    if not collectors.batches:
        raise ExportError("calibration produced no ranges: no calibration batches were read")
    return {method: collectors.ranges(method) for method in methods}


class _Collectors:
    """Each method's statistics of the calibrated tensors, batch by batch: their extremes
    (minmax), and ONNX Runtime's histograms (entropy, percentile) with its defaults."""

    HISTOGRAMS = {"entropy": (128, 128), "percentile": (2048, 128)}  # bins, quantized bins
    PERCENTILE = 99.999

    def __init__(self, tensors: Iterable[str], methods: list[str]) -> None:
        from onnxruntime.quantization.calibrate import HistogramCollector

        self.tensors = set(tensors)
        self.batches = 0
        self.extremes: dict[str, tuple[float, float]] = {}
        self.histograms = {
            method: HistogramCollector(
                method, True, *self.HISTOGRAMS[method], self.PERCENTILE, "same"
            )
            for method in methods
            if method in self.HISTOGRAMS
        }

    def add(self, outputs: dict[str, np.ndarray]) -> None:
        chosen = {name: value for name, value in outputs.items() if name in self.tensors}
        for name, value in chosen.items():
            lo, hi = self.extremes.get(name, (np.inf, -np.inf))
            self.extremes[name] = (min(lo, float(value.min())), max(hi, float(value.max())))
        with _printed_to_log():
            for collector in self.histograms.values():
                collector.collect({name: [value] for name, value in chosen.items()})
        self.batches += 1

    def ranges(self, method: str) -> Ranges:
        if method not in self.histograms:
            return dict(self.extremes)
        with _printed_to_log():
            computed = self.histograms[method].compute_collection_result()
        ranges = {}
        for name, (lo, hi, *_) in computed.items():
            ranges[name] = (float(np.asarray(lo).min()), float(np.asarray(hi).max()))
        return ranges


@contextlib.contextmanager
def _printed_to_log() -> Iterator[None]:
    """ONNX Runtime's calibration prints its progress on stdout: to the debug log instead,
    so that ``--json`` output stays JSON."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        yield
    for line in printed.getvalue().splitlines():
        logger.debug("onnxruntime: %s", line)


@contextlib.contextmanager
def scratch_folder(prefix: str, model_path: str) -> Iterator[str]:
    """A private temporary folder for ONNX Runtime's copies of ``model_path``, removed on
    every exit path. Refused up front when the temporary folder lacks room for them; a
    write that fails there anyway is one line naming the folder and its free space."""
    from google.protobuf.message import DecodeError

    room = tempfile.gettempdir()
    needed = SCRATCH_COPIES * os.path.getsize(model_path)
    if shutil.disk_usage(room).free < needed:
        raise OutputError(
            f"the temporary folder {room} has {free_space_text(room)} free; ONNX Runtime "
            f"needs about {needed / 1e6:.0f} MB there: set TMPDIR to a folder with room"
        )
    with private_folder(prefix) as scratch:
        try:
            yield scratch
        except OSError as exc:
            raise write_failure(exc, os.path.join(scratch, "")) from None
        except DecodeError:  # ONNX's shape inference writes a cut-short file without error
            raise OutputError(
                f"cannot write ONNX Runtime's scratch files in {room} "
                f"({free_space_text(room)} free): set TMPDIR to a folder with room"
            ) from None


def _linked_into(scratch: str, path: str) -> str:
    """``path`` as seen from ``scratch`` (a link, else a copy): ONNX Runtime writes its
    ``-inferred.onnx`` beside the model it is given, so that file lands in the scratch
    folder, which is removed on every exit path, never in the output folder."""
    target = os.path.join(scratch, os.path.basename(path))
    try:
        os.symlink(os.path.abspath(path), target)
    except OSError:
        shutil.copyfile(path, target)
    return target


def shape_inferred(fp32_path: str):
    """``fp32_path`` read with ONNX Runtime's shape inference, as its quantizer needs it."""
    from pathlib import Path

    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    with scratch_folder("fanet-quantize-", fp32_path) as scratch:
        return load_model_with_shape_infer(Path(_linked_into(scratch, fp32_path)))


def quantize_qdq(
    fp32_path: str, ranges: Ranges, method: str = "minmax", float_groups: Iterable[str] = ()
):
    """``fp32_path`` with Q/DQ pairs from ``ranges``; returns the ONNX ModelProto."""
    return quantize_inferred(shape_inferred(fp32_path), ranges, method, float_groups)


def quantize_inferred(inferred, ranges: Ranges, method: str, float_groups: Iterable[str] = ()):
    """A quantized copy of the shape-inferred FP32 graph ``inferred``; the Convs named in
    ``float_groups`` stay float."""
    import onnx
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.calibrate import TensorData, TensorsData
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer

    model = onnx.ModelProto()
    model.CopyFrom(inferred)  # the quantizer changes the graph it is given
    tensors = TensorsData(
        _method(method),
        {
            name: TensorData(lowest=np.float32(lo), highest=np.float32(hi))
            for name, (lo, hi) in ranges.items()
        },
    )
    quantizer = QDQQuantizer(  # signature of onnxruntime 1.18 - 1.32 (pinned in pyproject)
        model=model,
        per_channel=True,
        reduce_range=False,  # full int8
        weight_qType=QuantType.QInt8,
        activation_qType=QuantType.QInt8,
        tensors_range=tensors,
        nodes_to_quantize=None,
        nodes_to_exclude=sorted(float_groups),
        op_types_to_quantize=QUANTIZED_OPS,
        extra_options={
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QDQKeepRemovableActivations": False,
        },
    )
    quantizer.quantize_model()
    dedicate_quantized_inputs(quantizer.model.graph())
    quantizer.model.topological_sort()  # the quantizer appends its nodes out of order
    return quantizer.model.model


def dedicate_quantized_inputs(graph) -> int:
    """Give each quantized consumer of a shared activation Q/DQ pair a pair of its own.

    ONNX Runtime's CPU provider converts int8 activation pairs to uint8 (its fast x86
    kernels) one Q->DQ pair at a time, and only where the pair feeds one node; a Conv
    whose input pair is shared (a residual block's input, the q/k/v projections) stays a
    float Conv. The copies quantize with the same values, so the graph computes exactly
    what it did; their scale and zero point are separate initializers so that common
    subexpression elimination does not merge them back. Returns the number of copies.
    """
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in set(node.input):
            readers.setdefault(name, []).append(node)

    nodes, copies = [], 0
    for node in graph.node:
        nodes.append(node)
        quantize = producers.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if quantize is None or quantize.op_type != "QuantizeLinear":
            continue
        shared = readers.get(node.output[0], [])
        quantized = [reader for reader in shared if reader.op_type in QUANTIZED_OPS]
        keeps_original = len(shared) > len(quantized)
        for reader in quantized[0 if keeps_original else 1 :]:
            copies += 1
            pair = _copy_pair(graph, initializers, quantize, node, f"_for_{copies}")
            nodes.extend(pair)
            _rename_input(reader, node.output[0], pair[1].output[0])
    del graph.node[:]
    graph.node.extend(nodes)
    return copies


def _copy_pair(graph, initializers: dict, quantize, dequantize, suffix: str) -> tuple:
    """Copies of ``quantize`` -> ``dequantize`` with their own scale and zero point."""
    parameters = []
    for name in quantize.input[1:]:
        tensor = graph.initializer.add()
        tensor.CopyFrom(initializers[name])
        tensor.name = name + suffix
        parameters.append(tensor.name)
    quantize_copy = _renamed_copy(quantize, quantize.input[0], parameters, suffix)
    dequantize_copy = _renamed_copy(dequantize, quantize_copy.output[0], parameters, suffix)
    return quantize_copy, dequantize_copy


def _renamed_copy(node, data: str, parameters: list, suffix: str):
    copy = type(node)()
    copy.CopyFrom(node)
    copy.name = node.name + suffix
    copy.input[:] = [data, *parameters]
    copy.output[:] = [node.output[0] + suffix]
    return copy


def _rename_input(node, old: str, new: str) -> None:
    node.input[:] = [new if name == old else name for name in node.input]
