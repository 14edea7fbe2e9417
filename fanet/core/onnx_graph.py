"""A read-only view of an ONNX file without the ``onnx`` package (Python 3.6 compatible).

The device side has no ``onnx``, yet ``fanet-build`` must check a graph against TensorRT's
parser rules before parsing it. This module decodes the few protobuf messages those rules
need (model, graph, node, attribute, tensor, value info) straight from the wire format,
and infers every tensor's element type the way ONNX's type inference does for the
operators FANet graphs use.
"""

import struct
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

from fanet.core.errors import FanetError

# TensorProto.DataType values.
FLOAT, UINT8, INT8, INT32, INT64, BOOL, FLOAT16, DOUBLE = 1, 2, 3, 6, 7, 9, 10, 11
BFLOAT16, FLOAT8E4M3FN, INT4, FLOAT4E2M1 = 16, 17, 22, 23
DTYPE_NAMES = {
    FLOAT: "FP32",
    UINT8: "UINT8",
    INT8: "INT8",
    4: "UINT16",
    5: "INT16",
    INT32: "INT32",
    INT64: "INT64",
    8: "STRING",
    BOOL: "BOOL",
    FLOAT16: "FP16",
    DOUBLE: "DOUBLE",
    BFLOAT16: "BF16",
    FLOAT8E4M3FN: "FP8",
    INT4: "INT4",
    FLOAT4E2M1: "FP4",
}
FLOAT_TYPES = (FLOAT, FLOAT16, BFLOAT16, DOUBLE)
_NUMPY = {
    FLOAT: np.float32,
    UINT8: np.uint8,
    INT8: np.int8,
    INT32: np.int32,
    INT64: np.int64,
    BOOL: np.bool_,
    FLOAT16: np.float16,
    DOUBLE: np.float64,
}


class OnnxReadError(FanetError):
    """A file is not a readable ONNX model."""


class Tensor(NamedTuple):
    """An initializer or a constant: its name, element type, shape and raw content."""

    name: str
    dtype: int
    dims: Tuple[int, ...]
    raw: bytes
    typed: Tuple[Any, ...]  # float_data / int32_data / int64_data when raw is empty

    def values(self) -> np.ndarray:
        """The content as a numpy array (types TensorRT's rules need to read)."""
        if self.dtype not in _NUMPY:
            raise OnnxReadError(
                "cannot read {} values of {}".format(dtype_name(self.dtype), self.name)
            )
        array: np.ndarray
        if self.raw:
            array = np.frombuffer(self.raw, dtype=_NUMPY[self.dtype])
        else:
            array = np.array(
                self.typed, dtype=np.float64 if self.dtype in FLOAT_TYPES else np.int64
            )
            array = array.astype(_NUMPY[self.dtype])
        return array.reshape(self.dims)


class Node(NamedTuple):
    """A node: the same field names as ``onnx.NodeProto`` for the ones rules read."""

    name: str
    op_type: str
    domain: str
    input: Tuple[str, ...]
    output: Tuple[str, ...]
    attributes: Dict[str, Any]


class ValueInfo(NamedTuple):
    """A graph input or output: name, element type and shape (str for symbolic dims)."""

    name: str
    dtype: int
    shape: Tuple[Any, ...]


class Graph(NamedTuple):
    """The parts of an ONNX model TensorRT's parser rules look at."""

    opsets: Dict[str, int]
    nodes: List[Node]
    initializers: Dict[str, Tensor]
    inputs: List[ValueInfo]
    outputs: List[ValueInfo]

    @property
    def opset(self) -> int:
        """The default-domain opset."""
        return self.opsets.get("", self.opsets.get("ai.onnx", 0))

    def constants(self) -> Dict[str, Tensor]:
        """Build-time constants: initializers and ``Constant`` node outputs."""
        found = dict(self.initializers)
        for node in self.nodes:
            value = node.attributes.get("value")
            if node.op_type == "Constant" and isinstance(value, Tensor):
                found[node.output[0]] = value._replace(name=node.output[0])
        return found


def dtype_name(dtype: int) -> str:
    return DTYPE_NAMES.get(dtype, "type {}".format(dtype))


# --- protobuf wire format -------------------------------------------------------------


def _varint(data: memoryview, position: int) -> Tuple[int, int]:
    result, shift = 0, 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _fields(data: memoryview) -> Iterator[Tuple[int, int, Any]]:
    """(field number, wire type, value) for each field of a message."""
    position, end = 0, len(data)
    value: Any
    while position < end:
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 1:
            value, position = data[position : position + 8], position + 8
        elif wire == 2:
            length, position = _varint(data, position)
            value, position = data[position : position + length], position + length
        elif wire == 5:
            value, position = data[position : position + 4], position + 4
        else:
            raise OnnxReadError("unsupported protobuf wire type {}".format(wire))
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: memoryview) -> str:
    return bytes(value).decode("utf-8", "replace")


def _packed_varints(value: Any, wire: int) -> List[int]:
    if wire == 0:
        return [_signed(value)]
    numbers, position = [], 0
    while position < len(value):
        number, position = _varint(value, position)
        numbers.append(_signed(number))
    return numbers


def _packed_floats(value: Any, wire: int) -> List[float]:
    raw = bytes(value)
    return list(struct.unpack("<{}f".format(len(raw) // 4), raw))


def _tensor(data: memoryview) -> Tensor:
    name, dtype, dims, raw = "", 0, [], b""
    typed: List[Any] = []
    for number, wire, value in _fields(data):
        if number == 1:
            dims.extend(_packed_varints(value, wire))
        elif number == 2:
            dtype = value
        elif number == 4:
            typed.extend(_packed_floats(value, wire))
        elif number in (5, 7):
            typed.extend(_packed_varints(value, wire))
        elif number == 8:
            name = _text(value)
        elif number == 9:
            raw = bytes(value)
        elif number == 13:
            raise OnnxReadError("tensor {} keeps its data in an external file".format(name))
    return Tensor(name, dtype, tuple(dims), raw, tuple(typed))


def _attribute(data: memoryview) -> Tuple[str, Any]:
    name, value_of = "", {}  # type: Tuple[str, Dict[int, Any]]
    floats: List[float] = []
    ints: List[int] = []
    for number, wire, value in _fields(data):
        if number == 1:
            name = _text(value)
        elif number == 2:
            value_of[2] = struct.unpack("<f", bytes(value))[0]
        elif number == 3:
            value_of[3] = _signed(value)
        elif number == 4:
            value_of[4] = _text(value)
        elif number == 5:
            value_of[5] = _tensor(value)
        elif number == 7:
            floats.extend(_packed_floats(value, wire))
        elif number == 8:
            ints.extend(_packed_varints(value, wire))
        elif number == 6:
            value_of[6] = "<graph>"
    if floats:
        return name, tuple(floats)
    if ints:
        return name, tuple(ints)
    return name, next(iter(value_of.values()), None)


def _node(data: memoryview) -> Node:
    inputs, outputs, attributes = [], [], {}
    name = op_type = domain = ""
    for number, _, value in _fields(data):
        if number == 1:
            inputs.append(_text(value))
        elif number == 2:
            outputs.append(_text(value))
        elif number == 3:
            name = _text(value)
        elif number == 4:
            op_type = _text(value)
        elif number == 5:
            key, attribute = _attribute(value)
            attributes[key] = attribute
        elif number == 7:
            domain = _text(value)
    return Node(name, op_type, domain, tuple(inputs), tuple(outputs), attributes)


def _value_info(data: memoryview) -> ValueInfo:
    name, dtype, shape = "", 0, []  # type: Tuple[str, int, List[Any]]
    for number, _, value in _fields(data):
        if number == 1:
            name = _text(value)
        elif number == 2:
            for type_number, _, tensor_type in _fields(value):
                if type_number != 1:
                    continue
                for field, _, content in _fields(tensor_type):
                    if field == 1:
                        dtype = content
                    elif field == 2:
                        shape = [_dimension(dim) for n, _, dim in _fields(content) if n == 1]
    return ValueInfo(name, dtype, tuple(shape))


def _dimension(data: memoryview) -> Any:
    for number, _, value in _fields(data):
        if number == 1:
            return _signed(value)
        if number == 2:
            return _text(value)
    return None


def parse_model(content: bytes) -> Graph:
    """The graph of a serialized ONNX ``ModelProto``."""
    data = memoryview(content)
    opsets: Dict[str, int] = {}
    graph_data = None
    try:
        for number, _, value in _fields(data):
            if number == 7:
                graph_data = value
            elif number == 8:
                fields = {n: v for n, _, v in _fields(value)}
                opsets[_text(fields.get(1, memoryview(b"")))] = int(fields.get(2, 0))
        if graph_data is None:
            raise OnnxReadError("no graph in the model")
        nodes, initializers, inputs, outputs = [], {}, [], []
        for number, _, value in _fields(graph_data):
            if number == 1:
                nodes.append(_node(value))
            elif number == 5:
                tensor = _tensor(value)
                initializers[tensor.name] = tensor
            elif number == 11:
                inputs.append(_value_info(value))
            elif number == 12:
                outputs.append(_value_info(value))
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise OnnxReadError("not a valid ONNX protobuf ({})".format(exc)) from None
    inputs = [i for i in inputs if i.name not in initializers]
    return Graph(opsets, nodes, initializers, inputs, outputs)


def _file_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError as exc:
        raise OnnxReadError("cannot read {}: {}".format(path, exc.strerror or exc)) from None


def read_metadata_props(path: str) -> Dict[str, str]:
    """The ``metadata_props`` (key -> value) of the ONNX file at ``path``."""
    props = {}
    try:
        for number, _, value in _fields(memoryview(_file_bytes(path))):
            if number == 14:  # ModelProto.metadata_props: StringStringEntryProto
                entry = {n: _text(v) for n, _, v in _fields(value)}
                props[entry.get(1, "")] = entry.get(2, "")
    except (IndexError, struct.error, UnicodeDecodeError, OnnxReadError) as exc:
        raise OnnxReadError("{}: not a valid ONNX protobuf ({})".format(path, exc)) from None
    return props


def read_model(path: str) -> Graph:
    """The graph of the ONNX file at ``path``."""
    content = _file_bytes(path)
    try:
        return parse_model(content)
    except OnnxReadError as exc:
        raise OnnxReadError("{}: {}".format(path, exc)) from None


# --- element types ----------------------------------------------------------------------

# Every other op's output has its first input's type.
_FIXED_OUTPUT = {"Shape": INT64, "Size": INT64, "ArgMax": INT64, "ArgMin": INT64, "NonZero": INT64}
_BOOLEAN = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or"}


def _output_type(node: Node, types: Dict[str, int]) -> Optional[int]:
    op = node.op_type
    first = types.get(node.input[0]) if node.input and node.input[0] else None
    if op == "Cast":
        return int(node.attributes["to"])
    if op == "Constant":
        value = node.attributes.get("value")
        return value.dtype if isinstance(value, Tensor) else None
    if op == "ConstantOfShape":
        value = node.attributes.get("value")
        return value.dtype if isinstance(value, Tensor) else FLOAT
    if op == "QuantizeLinear":
        if "output_dtype" in node.attributes and node.attributes["output_dtype"]:
            return int(node.attributes["output_dtype"])
        return types.get(node.input[2], UINT8) if len(node.input) > 2 and node.input[2] else UINT8
    if op == "DequantizeLinear":
        return types.get(node.input[1]) if len(node.input) > 1 else FLOAT
    if op in _FIXED_OUTPUT:
        return _FIXED_OUTPUT[op]
    if op in _BOOLEAN:
        return BOOL
    return first


def infer_dtypes(graph: Graph) -> Dict[str, int]:
    """The element type of every tensor of ``graph`` (nodes must be in topological order)."""
    types = {name: tensor.dtype for name, tensor in graph.initializers.items()}
    types.update((value.name, value.dtype) for value in graph.inputs)
    for node in graph.nodes:
        dtype = _output_type(node, types)
        for index, name in enumerate(node.output):
            if not name:
                continue
            if node.op_type == "TopK" and index == 1:
                types[name] = INT64
            elif dtype is not None:
                types[name] = dtype
    return types


def producers(graph: Graph) -> Dict[str, Node]:
    """Tensor name -> the node that writes it."""
    return {name: node for node in graph.nodes for name in node.output if name}
