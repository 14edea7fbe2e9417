"""The modules that must import wherever the device side runs, whatever TensorRT is
there: every module of ``fanet.runtime.trt``, the backend registry, the ROS 2 node, the
bag reader and the device commands (ROS and mcap are imported only when used).
``python -m support.device_modules`` imports them all and prints the TensorRT
version they saw (Python 3.6 compatible)."""

import importlib
import os
from typing import List

import fanet

PACKAGE = os.path.dirname(os.path.abspath(fanet.__file__))
# The tests of the device side, under tests/: they run on Python 3.6 too.
DEVICE_TEST_FOLDERS = (
    "core",
    "conformance",
    "runtime",
    "evaluation",
    "media",
    "bench",
    "serving",
    "ros2",
    "cli/device",
)


def _modules(package: str) -> List[str]:
    folder = os.path.join(PACKAGE, *package.split(".")[1:])
    names = sorted(name[:-3] for name in os.listdir(folder) if name.endswith(".py"))
    return [package + "." + name for name in names if name != "__init__"]


def device_modules() -> List[str]:
    return (
        _modules("fanet.runtime.trt")
        + ["fanet.runtime.registry", "fanet.runtime.segmenter"]
        + _modules("fanet.ros2")
        + ["fanet.media.bags"]
        + _modules("fanet.cli.device")
    )


if __name__ == "__main__":
    for name in device_modules():
        importlib.import_module(name)
    print(importlib.import_module("tensorrt").__version__)
