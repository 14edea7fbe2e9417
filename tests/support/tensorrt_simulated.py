"""What the TensorRT stand-ins do (``standin.py`` gives them each version's names only).

- **Runtime**: an engine is JSON (the image input's shape, its profile, the temporal state
  as ``[input, output, shape]``); running it calls ``cuda.kernel`` from the image buffer
  into the output's and from each state input into its output (output shape = input's).
  A shape outside the profile and an address off a 256-byte boundary are rejected
  (``set_input_shape`` / ``set_tensor_address`` return False), as TensorRT does.
- **Builder**: the ONNX parser fills a network with layers named as TensorRT's parser
  names them (node name, then ``_<counter>`` for a node's further layers,
  ``_quantize_scale_node`` / ``_dequantize_scale_node`` for Q/DQ, unnamed helper
  shuffles); ``build_serialized_network`` refuses, logging an error as TensorRT does, what
  TensorRT refuses (precision flags on a strongly typed network, Q/DQ in a weakly typed
  one without the INT8 flag, dynamic inputs without a profile) and otherwise returns the
  engine JSON with what the build was asked for.
- **Timing caches**: serialized as JSON with the GPU they were made on.
"""

import json
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from fanet.core.onnx_graph import FLOAT, OnnxReadError, infer_dtypes, parse_model

GPU = ("Stand-in GPU", "8.7")
IMAGE, OUTPUT = "input", "logits"
ALIGNMENT = 256  # what TensorRT asks of I/O addresses
PRECISION_FLAGS = ("FP16", "INT8", "BF16", "OBEY_PRECISION_CONSTRAINTS")
NO_GPU_MESSAGE = (  # as real TensorRT 8.4 logs it on a machine without a GPU
    "CUDA initialization failure with error: 35. Please check your CUDA installation:  "
    "http://docs.nvidia.com/cuda/cuda-installation-guide-linux/index.html"
)


def _new(cls: type, **state: Any) -> Any:
    """An instance of a stand-in class made without its (pybind11-less) constructor."""
    instance = object.__new__(cls)
    for name, value in state.items():
        object.__setattr__(instance, name, value)
    return instance


def behaviours(
    cuda: Any,
    dla_cores: int = 0,
    fast_int8: bool = True,
    gpu: bool = True,
    faults: Optional[Dict[str, str]] = None,
) -> Callable:
    """The stand-in behaviours for ``standin_tensorrt``; engines run on ``cuda``. Without a
    ``gpu``, the builder and runtime fail as TensorRT 8.4 does on a machine without one:
    they log the CUDA error and pybind11 raises ``TypeError`` (a null factory result).
    ``faults["parse"]``, while set, is the error the ONNX parser reports."""
    faults = {} if faults is None else faults

    def make(trt: Any) -> Dict[str, Any]:
        def start(logger: Any) -> None:
            if not gpu:
                severity = trt.ILogger.Severity.WARNING
                logger.log(severity, "Unable to determine GPU memory usage")
                logger.log(severity, NO_GPU_MESSAGE)
                raise TypeError("pybind11::init(): factory function returned nullptr")

        simulated = dict(_runtime(trt, cuda, start))
        simulated.update(_builder(trt, dla_cores, fast_int8, start, faults))
        return simulated

    return make


def _dims(trt: Any, shape: Any) -> Any:
    return trt.Dims([int(d) for d in shape])


def _runtime(trt: Any, cuda: Any, start: Callable[[Any], None]) -> Dict[str, Any]:  # noqa: C901 (defines the stand-in classes inside)
    class ILogger:
        def __init__(self) -> None:
            pass

    class Dims:
        def __init__(self, shape: Any = ()) -> None:
            object.__setattr__(self, "_shape", tuple(int(d) for d in shape))

        def __len__(self) -> int:
            return len(self._shape)

        def __getitem__(self, index: int) -> int:
            return self._shape[index]

        def __iter__(self) -> Any:
            return iter(self._shape)

    class Runtime:
        def __init__(self, logger: Any) -> None:
            start(logger)
            object.__setattr__(self, "_logger", logger)

        def deserialize_cuda_engine(self, data: bytes) -> Any:
            description = json.loads(bytes(data).decode())
            return trt.ICudaEngine._make(description)

    class ICudaEngine:
        @classmethod
        def _make(cls, description: Dict[str, Any]) -> Any:
            state = [tuple(entry) for entry in description.get("state", [])]
            inputs = [IMAGE] + [source for source, _, _ in state]
            names = inputs + [OUTPUT] + [target for _, target, _ in state]
            shapes = {name: tuple(shape) for a, b, shape in state for name in (a, b)}
            return _new(
                cls,
                _description=description,
                _state=state,
                _inputs=inputs,
                _names=names,
                _shapes=shapes,
                _shape=tuple(description["shape"]),
            )

        num_io_tensors = property(lambda self: len(self._names))
        num_bindings = property(lambda self: len(self._names))

        def get_tensor_name(self, index: int) -> str:
            return self._names[index]

        def get_tensor_mode(self, name: str) -> Any:
            mode = trt.TensorIOMode
            return mode.INPUT if name in self._inputs else mode.OUTPUT

        def get_tensor_dtype(self, name: str) -> Any:
            return trt.float32

        def _shape_of(self, name: str) -> Any:
            return _dims(trt, self._shapes.get(name, self._shape))

        def get_tensor_shape(self, name: str) -> Any:
            return self._shape_of(name)

        def get_binding_name(self, index: int) -> str:
            return self._names[index]

        def binding_is_input(self, index: int) -> bool:
            return self._names[index] in self._inputs

        def get_binding_dtype(self, index: int) -> Any:
            return trt.float32

        def get_binding_shape(self, index: int) -> Any:
            return self._shape_of(self._names[index])

        def create_execution_context(self) -> Any:
            return trt.IExecutionContext._make(self)

    class IExecutionContext:
        @classmethod
        def _make(cls, engine: Any) -> Any:
            return _new(cls, _engine=engine, _shape=engine._shape, _addresses={})

        def _accepts(self, shape: Tuple[int, ...]) -> bool:
            profile = self._engine._description.get("profile")
            fixed = [(d, wanted) for d, wanted in zip(self._engine._shape, shape) if d >= 0]
            if len(shape) != len(self._engine._shape) or any(d != w for d, w in fixed):
                return False
            if profile is None:
                return True
            return all(lo <= s <= hi for s, lo, hi in zip(shape, profile["min"], profile["max"]))

        def _set_shape(self, name: str, shape: Any) -> bool:
            shape = tuple(int(d) for d in shape)
            if name == IMAGE:
                if not self._accepts(shape):
                    return False
                object.__setattr__(self, "_shape", shape)
            return True

        def _shape_of(self, name: str) -> Any:
            return _dims(trt, self._engine._shapes.get(name, self._shape))

        def set_input_shape(self, name: str, shape: Any) -> bool:
            return self._set_shape(name, shape)

        def get_tensor_shape(self, name: str) -> Any:
            return self._shape_of(name)

        def set_tensor_address(self, name: str, pointer: int) -> bool:
            if name not in self._engine._names or pointer % ALIGNMENT:
                return False
            self._addresses[name] = pointer
            return True

        def execute_async_v3(self, stream: int) -> bool:
            return self._execute(stream)

        def _execute(self, stream: int) -> bool:
            nbytes = int(np.prod(self._shape)) * 4
            cuda.kernel(self._addresses[IMAGE], self._addresses[OUTPUT], nbytes, stream)
            for source, target, shape in self._engine._state:
                size = int(np.prod(shape)) * 4
                cuda.kernel(self._addresses[source], self._addresses[target], size, stream)
            return True

        def set_binding_shape(self, index: int, shape: Any) -> bool:
            return self._set_shape(self._engine._names[index], shape)

        def get_binding_shape(self, index: int) -> Any:
            return self._shape_of(self._engine._names[index])

        def execute_async_v2(self, bindings: List[int], stream: int) -> bool:
            self._addresses.clear()
            self._addresses.update(zip(self._engine._names, bindings))
            return self._execute(stream)

    def nptype(dtype: Any) -> Any:
        kinds = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT8": np.int8}
        return kinds[dtype.name]

    return {
        "ILogger": ILogger,
        "Dims": Dims,
        "Runtime": Runtime,
        "ICudaEngine": ICudaEngine,
        "IExecutionContext": IExecutionContext,
        "nptype": nptype,
    }


# ONNX op -> the TensorRT layer type the parser makes (others: ELEMENTWISE-like, by name).
LAYER_TYPES = {
    "Conv": "CONVOLUTION",
    "MatMul": "MATRIX_MULTIPLY",
    "QuantizeLinear": "QUANTIZE",
    "DequantizeLinear": "DEQUANTIZE",
    "Shape": "SHAPE",
    "Reshape": "SHUFFLE",
    "Transpose": "SHUFFLE",
    "Div": "ELEMENTWISE",
    "Add": "ELEMENTWISE",
    "Mul": "ELEMENTWISE",
    "Relu": "ACTIVATION",
    "Resize": "RESIZE",
    "MaxPool": "POOLING",
    "Concat": "CONCATENATION",
    "ArgMax": "TOPK",
}


def _builder(  # noqa: C901 (defines the stand-in classes inside)
    trt: Any,
    dla_cores: int,
    fast_int8: bool,
    start: Callable[[Any], None],
    faults: Dict[str, str],
) -> Dict[str, Any]:
    def layer_type(name: str) -> Any:
        kinds = trt.LayerType
        return getattr(kinds, name) if name in dir(kinds) else kinds.ELEMENTWISE

    class ITensor:
        @classmethod
        def _make(cls, name: str, dtype: Any, shape: Tuple[int, ...] = ()) -> Any:
            return _new(cls, _name=name, _dtype=dtype, _shape=shape)

        name = property(lambda self: self._name)
        dtype = property(lambda self: self._dtype)
        shape = property(lambda self: _dims(trt, self._shape))

    class ILayer:
        @classmethod
        def _make(cls, name: str, kind: str, inputs: List[Any], outputs: List[Any]) -> Any:
            return _new(
                cls,
                _name=name,
                _type=layer_type(kind),
                _inputs=inputs,
                _outputs=outputs,
                _precision=None,
                _output_types={},
            )

        name = property(lambda self: self._name)
        type = property(lambda self: self._type)
        num_inputs = property(lambda self: len(self._inputs))
        num_outputs = property(lambda self: len(self._outputs))

        def get_input(self, index: int) -> Any:
            return self._inputs[index]

        def get_output(self, index: int) -> Any:
            return self._outputs[index]

        def _set_precision(self, dtype: Any) -> None:
            object.__setattr__(self, "_precision", dtype)

        precision = property(lambda self: self._precision, _set_precision)

        def set_output_type(self, index: int, dtype: Any) -> None:
            self._output_types[index] = dtype

    class INetworkDefinition:
        @classmethod
        def _make(cls, flags: int) -> Any:
            return _new(cls, _flags=flags, _layers=[], _inputs=[], _outputs=[], _names=set())

        num_layers = property(lambda self: len(self._layers))
        num_inputs = property(lambda self: len(self._inputs))
        num_outputs = property(lambda self: len(self._outputs))

        def get_layer(self, index: int) -> Any:
            return self._layers[index]

        def get_input(self, index: int) -> Any:
            return self._inputs[index]

        def get_output(self, index: int) -> Any:
            return self._outputs[index]

        def _strongly_typed(self) -> bool:
            flags = trt.NetworkDefinitionCreationFlag
            typed = "STRONGLY_TYPED" in dir(flags)
            return typed and bool(self._flags & (1 << int(flags.STRONGLY_TYPED)))

        def _add(self, basename: str, kind: str, inputs: List[Any], outputs: List[Any]) -> None:
            name, counter = basename, len(self._layers)  # ImporterContext::generateUniqueName
            while name in self._names:
                name = "{}_{}".format(basename, counter)
                counter += 1
            self._names.add(name)
            self._layers.append(trt.ILayer._make(name, kind, inputs, outputs))

        def _fill(self, content: bytes) -> Optional[str]:
            """Layers as the parser imports ``content``; an error message, or None."""
            try:
                graph = parse_model(content)
            except OnnxReadError as exc:
                return str(exc)
            types = infer_dtypes(graph)
            tensors = {}  # type: Dict[str, Any]

            def of(name: str) -> Any:
                dtype = trt.float32 if types.get(name) == FLOAT else trt.int32
                return tensors.setdefault(name, trt.ITensor._make(name, dtype))

            for value in graph.inputs:
                shape = tuple(d if isinstance(d, int) and d > 0 else -1 for d in value.shape)
                tensors[value.name] = trt.ITensor._make(value.name, trt.float32, shape)
                self._inputs.append(tensors[value.name])
            for node in graph.nodes:
                self._import(node, graph, of)
            self._outputs.extend(of(value.name) for value in graph.outputs)
            return None

        def _import(self, node: Any, graph: Any, of: Callable[[str], Any]) -> None:
            if node.op_type == "Constant":
                return
            inputs = [of(n) for n in node.input if n and n not in graph.initializers]
            outputs = [of(n) for n in node.output]
            if node.op_type == "ReduceL2":  # x*x -> ReduceSum -> Sqrt
                square = trt.ITensor._make(node.name + "/square", trt.float32)
                total = trt.ITensor._make(node.name + "/sum", trt.float32)
                self._add(node.name, "ELEMENTWISE", inputs, [square])
                self._add(node.name, "REDUCE", [square], [total])
                self._add(node.name, "UNARY", [total], outputs)
            elif node.op_type == "MatMul":  # a helper shuffle the parser leaves unnamed
                moved = trt.ITensor._make(node.name + "/moved", trt.float32)
                helper = "(Unnamed Layer* {}) [Shuffle]".format(len(self._layers))
                self._layers.append(trt.ILayer._make(helper, "SHUFFLE", inputs[:1], [moved]))
                self._add(node.name, "MATRIX_MULTIPLY", [moved] + inputs[1:], outputs)
            elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                quantize = node.op_type == "QuantizeLinear"
                suffix = "_quantize_scale_node" if quantize else "_dequantize_scale_node"
                kind = "QUANTIZE" if quantize else "DEQUANTIZE"
                self._add(node.name + suffix, kind, inputs, outputs)
            else:
                self._add(node.name, LAYER_TYPES.get(node.op_type, "ELEMENTWISE"), inputs, outputs)

    class OnnxParser:
        def __init__(self, network: Any, logger: Any) -> None:
            object.__setattr__(self, "_network", network)
            object.__setattr__(self, "_errors", [])

        def parse(self, model: bytes) -> bool:
            error = faults.get("parse") or self._network._fill(bytes(model))
            if error:
                self._errors.append(error)
            return error is None

        num_errors = property(lambda self: len(self._errors))

        def get_error(self, index: int) -> str:
            return self._errors[index]

    class IOptimizationProfile:
        def set_shape(self, name: str, minimum: Any, optimum: Any, maximum: Any) -> None:
            self._shapes[name] = {"min": list(minimum), "opt": list(optimum), "max": list(maximum)}

    class IHostMemory:
        def __bytes__(self) -> bytes:
            return self._content

    class ITimingCache:
        def serialize(self) -> Any:
            content = {"gpu": self._gpu, "entries": sorted(self._entries)}
            return _new(trt.IHostMemory, _content=json.dumps(content).encode())

        def combine(self, other: Any, ignore_mismatch: bool) -> bool:
            if other._gpu != self._gpu and not ignore_mismatch:
                return False
            self._entries.update(other._entries)
            return True

    def timing_cache(content: bytes) -> Any:
        loaded = json.loads(bytes(content).decode()) if content else {}
        gpu = loaded.get("gpu", GPU[0])
        return _new(trt.ITimingCache, _gpu=gpu, _entries=set(loaded.get("entries", [])))

    class IBuilderConfig:
        def set_flag(self, flag: Any) -> None:
            self._flags.add(flag.name)

        def get_flag(self, flag: Any) -> bool:
            return flag.name in self._flags

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            self._pools[pool.name] = int(size)

        def _set_workspace(self, size: int) -> None:  # TensorRT 8.x
            self._pools["WORKSPACE"] = int(size)

        max_workspace_size = property(lambda self: self._pools.get("WORKSPACE"), _set_workspace)

        def add_optimization_profile(self, profile: Any) -> int:
            self._profiles.append(profile)
            return len(self._profiles) - 1

        def _set_calibrator(self, calibrator: Any) -> None:
            object.__setattr__(self, "_calibrator", calibrator)

        int8_calibrator = property(lambda self: self._calibrator, _set_calibrator)

        def create_timing_cache(self, serialized_timing_cache: bytes) -> Any:
            return timing_cache(serialized_timing_cache)

        def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
            if cache._gpu != GPU[0] and not ignore_mismatch:
                return False
            object.__setattr__(self, "_timing_cache", cache)
            return True

        def get_timing_cache(self) -> Any:
            return self._timing_cache

        def _set_device(self, device: Any) -> None:
            object.__setattr__(self, "_device", device.name)

        default_device_type = property(lambda self: self._device, _set_device)

        def _set_dla(self, core: int) -> None:
            object.__setattr__(self, "_dla_core", core)

        DLA_core = property(lambda self: self._dla_core, _set_dla)

    class IInt8EntropyCalibrator2:  # subclassed in Python; the build reads its cache
        def __init__(self) -> None:
            pass

    class Builder:
        def __init__(self, logger: Any) -> None:
            start(logger)
            object.__setattr__(self, "_logger", logger)

        platform_has_fast_fp16 = property(lambda self: True)
        platform_has_fast_int8 = property(lambda self: fast_int8)
        num_DLA_cores = property(lambda self: dla_cores)

        def create_network(self, flags: int = 0) -> Any:
            return trt.INetworkDefinition._make(flags)

        def create_builder_config(self) -> Any:
            return _new(
                trt.IBuilderConfig,
                _flags=set(),
                _pools={},
                _profiles=[],
                _calibrator=None,
                _timing_cache=None,
                _device="GPU",
                _dla_core=None,
            )

        def create_optimization_profile(self) -> Any:
            return _new(trt.IOptimizationProfile, _shapes={})

        def build_serialized_network(self, network: Any, config: Any) -> Any:
            errors = _refusals(network, config)
            for error in errors:
                self._logger.log(trt.ILogger.Severity.ERROR, error)
            if errors:
                return None
            description = _engine_description(network, config)
            if config._timing_cache is not None:
                config._timing_cache._entries.add("{} layers".format(network.num_layers))
            return _new(trt.IHostMemory, _content=json.dumps(description).encode())

    def _refusals(network: Any, config: Any) -> List[str]:
        """What TensorRT refuses to build."""
        typed = network._strongly_typed()
        precision_flags = sorted(config._flags & set(PRECISION_FLAGS))
        quantized = any(layer.type.name == "QUANTIZE" for layer in network._layers)
        errors = []
        if typed and precision_flags:
            errors.append("precision flags {} on a strongly typed network".format(precision_flags))
        if quantized and not typed and "INT8" not in config._flags:
            errors.append("Q/DQ layers in a weakly typed network without BuilderFlag.INT8")
        dynamic = any(-1 in tensor._shape for tensor in network._inputs)
        if dynamic and not config._profiles:
            errors.append("Network has dynamic inputs, but no optimization profile")
        return errors

    def _engine_description(network: Any, config: Any) -> Dict[str, Any]:
        typed = network._strongly_typed()
        image = network._inputs[0]
        profile = config._profiles[0]._shapes.get(image.name) if config._profiles else None
        calibrator = config._calibrator
        state = [
            [tensor.name, tensor.name + "_out", list(tensor._shape)]
            for tensor in network._inputs[1:]
        ]
        return {
            "shape": list(image._shape),
            "profile": profile,
            "state": state,
            "build": {
                "flags": sorted(config._flags),
                "strongly_typed": typed,
                "pinned": sum(layer._precision is not None for layer in network._layers),
                "calibration_cache_bytes": len(calibrator.read_calibration_cache())
                if calibrator is not None
                else None,
                "workspace": config._pools.get("WORKSPACE"),
                "device": config._device,
                "dla_core": config._dla_core,
            },
        }

    return {
        "ITensor": ITensor,
        "ILayer": ILayer,
        "INetworkDefinition": INetworkDefinition,
        "OnnxParser": OnnxParser,
        "IOptimizationProfile": IOptimizationProfile,
        "IHostMemory": IHostMemory,
        "ITimingCache": ITimingCache,
        "IBuilderConfig": IBuilderConfig,
        "Builder": Builder,
        "IInt8EntropyCalibrator2": IInt8EntropyCalibrator2,
    }
