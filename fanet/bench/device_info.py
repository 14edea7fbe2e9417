"""What a benchmark ran on: CPU and its vector extensions, GPU, library versions, Jetson
power state (Python 3.6)."""

import os
import platform
import re
import shutil
import subprocess
import threading
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from fanet.core.cpus import usable_cpus


def _first_line(command: List[str]) -> Optional[str]:
    if shutil.which(command[0]) is None:
        return None
    try:
        output = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    text = output.decode(errors="replace").strip()
    return text.splitlines()[0].strip() if text else None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                if line.lower().startswith(("model name", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Extension(NamedTuple):
    """A vector extension: its key in the report, its name for people, and the
    /proc/cpuinfo flags that show it."""

    key: str
    title: str
    flags: Tuple[str, ...]


ISA_EXTENSIONS = (
    Extension("avx2", "AVX2", ("avx2",)),
    Extension("avx512f", "AVX-512F", ("avx512f",)),
    Extension("avx512_vnni", "AVX-512 VNNI", ("avx512_vnni",)),
    Extension("avx_vnni", "AVX-VNNI", ("avx_vnni",)),
    Extension("amx", "AMX", ("amx_int8", "amx_bf16", "amx_tile")),
)
INT8_INSTRUCTIONS = ("avx512_vnni", "avx_vnni", "amx")  # integer dot products: INT8 pays


def cpu_isa(cpuinfo: str = "/proc/cpuinfo") -> Dict[str, bool]:
    """Which of the vector extensions that decide CPU inference speed the processor has
    (x86; all False elsewhere)."""
    flags = set()  # type: set
    try:
        with open(cpuinfo) as stream:
            for line in stream:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {ext.key: any(flag in flags for flag in ext.flags) for ext in ISA_EXTENSIONS}


def int8_gains_little(isa: Dict[str, bool]) -> bool:
    """Whether INT8 on this CPU lacks integer dot-product instructions (VNNI, AMX): ONNX
    Runtime and OpenVINO then gain little over FP32 with it."""
    return not any(isa.get(name) for name in INT8_INSTRUCTIONS)


def _version(module: str) -> Optional[str]:
    try:
        imported = __import__(module)
    except ImportError:
        return None
    return getattr(imported, "__version__", None)


def jetson_model() -> Optional[str]:
    try:
        with open("/proc/device-tree/model") as stream:
            return stream.read().strip("\x00\n ")
    except OSError:
        return None


def device_info(modules: List[str], threads: Optional[int] = None) -> Dict[str, Any]:
    """CPU model, threads, usable cores, the threads asked for (None: each backend's
    choice) and vector extensions; GPU name and driver; versions of ``modules``; Jetson
    state."""
    info: Dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_threads": os.cpu_count(),
        "cpu_usable": usable_cpus(),
        "threads": threads,
        "cpu_isa": cpu_isa(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in modules},
    }
    gpu = _first_line(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    if gpu:
        name, _, driver = gpu.partition(",")
        info.update(gpu=name.strip(), driver=driver.strip())
    model = jetson_model()
    if model:
        info.update(jetson=model, nvpmodel=_first_line(["nvpmodel", "-q"]))
    return info


class TegraStats:
    """Samples Jetson GPU load and input power from ``tegrastats`` while it is open."""

    _GPU = re.compile(r"GR3D_FREQ (\d+)%")
    _POWER = re.compile(r"(?:VDD_IN|POM_5V_IN) (\d+)(?:mW)?/")

    def __init__(self, interval_ms: int = 500) -> None:
        self._command = ["tegrastats", "--interval", str(interval_ms)]
        self._process: Optional[subprocess.Popen] = None
        self._thread: Optional[threading.Thread] = None
        self.gpu_load: List[float] = []
        self.power_mw: List[float] = []

    def __enter__(self) -> "TegraStats":
        if shutil.which("tegrastats"):
            self._process = subprocess.Popen(
                self._command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for raw in self._process.stdout:
            self.parse(raw.decode(errors="replace"))

    def parse(self, line: str) -> None:
        gpu, power = self._GPU.search(line), self._POWER.search(line)
        if gpu:
            self.gpu_load.append(float(gpu.group(1)))
        if power:
            self.power_mw.append(float(power.group(1)))

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=5)

    def summary(self) -> Dict[str, float]:
        result = {}
        if self.gpu_load:
            result["gpu_load_percent"] = sum(self.gpu_load) / len(self.gpu_load)
        if self.power_mw:
            result["power_mw"] = sum(self.power_mw) / len(self.power_mw)
        return result
