"""This machine as an engine record names it (Python 3.6 compatible)."""

import tensorrt as trt

from fanet.core.engine_record import Machine
from fanet.runtime.trt.cuda import CudaApi


def this_machine(cuda: CudaApi) -> Machine:
    """The TensorRT version, GPU and compute capability an engine built here is bound to."""
    name, capability = cuda.device_properties()
    return Machine(trt.__version__, name, capability)
