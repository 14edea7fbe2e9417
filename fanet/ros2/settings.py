"""The segmentation node's parameters, one typed record (Python 3.6 compatible).

``PARAMETERS`` lists each ROS parameter with its default and meaning (``fanet-ros2
--help`` prints them); ``settings_from(values)`` checks a set of values and returns
``NodeSettings``, or raises ``ConfigError`` in one line naming the parameter.
"""

from typing import Any, Dict, NamedTuple, Tuple

from fanet.core.errors import ConfigError
from fanet.media.ros_images import OUTPUTS

QOS_NAMES = ("sensor_data", "reliable")
INPUT_TYPES = ("raw", "compressed")


class NodeSettings(NamedTuple):
    model: str = ""  # engine, ONNX or checkpoint; "": the export in the working folder
    backend: str = "auto"
    precision: str = "fp32"
    device: str = ""  # onnxruntime/torch: cpu or cuda; openvino: CPU, GPU, NPU; "": the best
    temporal: int = 0  # frames of temporal attention; 0: the model's own
    input_topic: str = "image_raw"
    input_type: str = ""  # "raw" or "compressed"; "": by the topic's name (.../compressed)
    qos: str = "sensor_data"  # the camera subscription: best effort, keep last 1
    outputs: Tuple[str, ...] = ("labels",)  # of ros_images.OUTPUTS, published as ~/<name>
    diagnostics_period: float = 1.0  # seconds between /diagnostics reports

    @property
    def compressed(self) -> bool:
        """Whether the input topic carries ``sensor_msgs/msg/CompressedImage``."""
        if self.input_type:
            return self.input_type == "compressed"
        return self.input_topic.rstrip("/").endswith("/compressed")


_DEFAULTS = NodeSettings()
PARAMETERS = (
    (
        ("model", _DEFAULTS.model, "engine, ONNX or checkpoint (default: the export here)"),
        ("backend", _DEFAULTS.backend, "tensorrt, onnxruntime, openvino, torch or auto"),
        ("precision", _DEFAULTS.precision, "fp32, fp16 or int8: the graph or engine run"),
        ("device", _DEFAULTS.device, "cpu/cuda (onnxruntime, torch), CPU/GPU/NPU (openvino)"),
        ("temporal", _DEFAULTS.temporal, "frames of temporal attention (0: the model's own)"),
        ("input_topic", _DEFAULTS.input_topic, "the camera topic"),
        ("input_type", _DEFAULTS.input_type, "raw or compressed (default: by the topic's name)"),
        ("qos", _DEFAULTS.qos, "sensor_data (best effort, keep last 1) or reliable"),
    )
    + tuple((name, name in _DEFAULTS.outputs, "publish ~/{}".format(name)) for name in OUTPUTS)
    + (("diagnostics_period", _DEFAULTS.diagnostics_period, "seconds between /diagnostics"),)
)


def settings_from(values: Dict[str, Any]) -> NodeSettings:
    """``NodeSettings`` from parameter values (names of ``PARAMETERS``; missing ones keep
    their defaults). The precision is checked where the model is opened."""
    from fanet.runtime.registry import BACKEND_NAMES

    given = {name: values.get(name, default) for name, default, _ in PARAMETERS}
    for name, default, _ in PARAMETERS:
        _check_type(name, given[name], default)
    _check_choice("backend", given["backend"], BACKEND_NAMES)
    _check_choice("qos", given["qos"], QOS_NAMES)
    _check_choice("input_type", given["input_type"], ("",) + INPUT_TYPES)
    if given["device"].lower() not in ("", "cpu", "cuda", "gpu", "npu", "auto"):
        raise ConfigError(
            "parameter device must be cpu or cuda (onnxruntime, torch) or CPU, GPU, NPU or "
            "AUTO (openvino), got {!r}".format(given["device"])
        )
    if given["temporal"] < 0:
        raise ConfigError("parameter temporal must be >= 0, got {}".format(given["temporal"]))
    if not given["diagnostics_period"] > 0:
        raise ConfigError(
            "parameter diagnostics_period must be > 0 s, got {}".format(given["diagnostics_period"])
        )
    if not given["input_topic"]:
        raise ConfigError("parameter input_topic is empty")
    outputs = tuple(name for name in OUTPUTS if given[name])
    if not outputs:
        raise ConfigError("no output: set one of {} to true".format(", ".join(OUTPUTS)))
    fields = {name: given[name] for name in NodeSettings._fields if name in given}
    fields["diagnostics_period"] = float(fields["diagnostics_period"])
    return NodeSettings(outputs=outputs, **fields)


_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _check_type(name: str, value: Any, default: Any) -> None:
    expected = type(default)
    if expected is float:
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        fits = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
    if not fits:
        raise ConfigError("parameter {} must be {}, got {!r}".format(name, _KINDS[expected], value))


def _check_choice(name: str, value: str, choices: Tuple[str, ...]) -> None:
    if value not in choices:
        shown = ", ".join(choice or '""' for choice in choices)
        raise ConfigError("parameter {} must be one of {}, got {!r}".format(name, shown, value))
