"""The backends by name: what each runs, its options, and ``open_backend`` (Python 3.6).

One table (``BACKENDS``) says which module opens each backend, which files and
precisions it takes and which options it accepts. Modules are imported by name only
when chosen, so the device side never imports the host side (the torch backend lives
with the model) nor an accelerator library it does not use.
"""

import importlib
import importlib.util
import logging
import os
from types import ModuleType
from typing import Any, Callable, List, NamedTuple, Optional, Tuple, Type

from fanet.core.artefact_set import ArtefactSet, variant_of
from fanet.core.engine_record import read_record, record_path
from fanet.core.errors import ConfigError, MissingDependencyError
from fanet.core.host import HOST_PYTHON, INSTALL_HOST, host_available
from fanet.core.sidecar import MetadataError, Sidecar, read_sidecar, verify_sidecar
from fanet.runtime.backend import Backend, BackendError
from fanet.runtime.options import (
    OnnxRuntimeOptions,
    OpenVinoOptions,
    TensorRTOptions,
    TorchOptions,
    options_for,
)
from fanet.runtime.trt.versions import installed_tensorrt_version

logger = logging.getLogger(__name__)

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
ONNX_SUFFIXES = (".onnx",)
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".pkl")
MODULE = "module"  # what an in-memory torch model counts as, instead of a suffix


class BackendEntry(NamedTuple):
    """A backend: where its opener lives, what it runs and which options it takes."""

    name: str
    opener: str  # "package.module:function(model, device, precision, options) -> Backend"
    runs: Tuple[str, ...]  # file suffixes (and MODULE) it opens
    precisions: Tuple[str, ...]
    options: Type[Any]
    available: Callable[[], bool]  # whether it can run here (cheap, no import of the backend)
    needs: str  # what to install when its module cannot be imported

    def open(
        self, model: Any, device: Optional[str], precision: Optional[str], options: Any
    ) -> Backend:
        return self.load()(model, device, precision, options)

    def load(self) -> Callable[..., Backend]:
        """The backend's opener; a failure to import it is one line naming the backend
        and the cause (``MissingDependencyError`` where something is not installed)."""
        module_name, function = self.opener.split(":")
        what = "the {} backend".format(self.name)
        if not self.available():
            raise MissingDependencyError("{} needs {}".format(what, self.needs))
        opener: Callable[..., Backend] = getattr(
            load_module(module_name, what, self.needs), function
        )
        return opener


def load_module(module_name: str, what: str, needs: str) -> ModuleType:
    """Import ``module_name`` for ``what``; any failure is one line naming ``what`` and the
    cause (``MissingDependencyError`` saying it needs ``needs`` for an ``ImportError``)."""
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError("{} needs {} ({})".format(what, needs, exc)) from None
    except Exception as exc:  # e.g. an installed library of an unsupported version
        raise BackendError(
            "{} cannot be loaded: {}: {}".format(what, type(exc).__name__, exc)
        ) from None


# Best first: "auto" takes the first available entry that runs the file.
TENSORRT_NEEDS = "TensorRT and cuda-python or pycuda (JetPack, or NVIDIA's tensorrt wheel)"
BACKENDS = (
    BackendEntry(
        "tensorrt",
        "fanet.runtime.trt.engine_cache:open_engine_backend",
        ENGINE_SUFFIXES + ONNX_SUFFIXES,
        ("fp32", "fp16", "int8"),
        TensorRTOptions,
        lambda: installed_tensorrt_version() is not None,
        TENSORRT_NEEDS,
    ),
    BackendEntry(
        "onnxruntime",
        "fanet.runtime.onnxruntime_backend:open_onnxruntime",
        ONNX_SUFFIXES,
        ("fp32", "fp16", "int8"),
        OnnxRuntimeOptions,
        lambda: True,
        "onnxruntime: pip install 'fanet[runtime]'",
    ),
    BackendEntry(
        "openvino",
        "fanet.runtime.openvino_backend:open_openvino",
        ONNX_SUFFIXES,
        ("fp32", "fp16", "int8"),
        OpenVinoOptions,
        lambda: importlib.util.find_spec("openvino") is not None,
        "OpenVINO: pip install 'fanet[openvino]'",
    ),
    BackendEntry(
        "torch",
        "fanet.model.torch_backend:open_torch",
        CHECKPOINT_SUFFIXES + (MODULE,),
        ("fp32", "fp16"),
        TorchOptions,
        host_available,
        "PyTorch and the host side (Python >= {}.{}): {}".format(
            HOST_PYTHON[0], HOST_PYTHON[1], INSTALL_HOST
        ),
    ),
)
BACKEND_NAMES = ("auto",) + tuple(entry.name for entry in BACKENDS)


def backend_entry(name: str) -> BackendEntry:
    """The entry of backend ``name``; ``ConfigError`` listing the valid names."""
    for entry in BACKENDS:
        if entry.name == name:
            return entry
    raise ConfigError(
        "unknown backend {!r}; choose one of: {}".format(name, ", ".join(BACKEND_NAMES))
    )


def is_path(model: Any) -> bool:
    return isinstance(model, (str, os.PathLike))


def model_kind(model: Any) -> str:
    """The suffix of a model file (checked to exist), or ``MODULE`` for a torch module."""
    if not is_path(model):
        return MODULE
    path = os.fspath(model)
    suffix = os.path.splitext(path)[1].lower()
    if not any(suffix in entry.runs for entry in BACKENDS):
        raise BackendError(
            "cannot tell the model type of {} (expected .engine, .onnx or .pth)".format(path)
        )
    if not os.path.isfile(path):
        raise BackendError("model file not found: {}".format(path))
    return suffix


def choose_backend(
    kind: str, requested: str = "auto", precision: Optional[str] = None
) -> BackendEntry:
    """The backend for a model of ``kind`` (a suffix or ``MODULE``): ``requested``, checked
    against what it runs, or for ``"auto"`` the best available one: TensorRT, else ONNX
    Runtime with CUDA, else the CPU backend fastest at ``precision`` (``CPU_FASTEST``)."""
    candidates = [entry for entry in BACKENDS if kind in entry.runs]
    if requested != "auto":
        entry = backend_entry(requested)
        if entry not in candidates:
            raise BackendError(
                "{} run with {}, not {}".format(
                    "torch modules" if kind == MODULE else kind + " files",
                    " or ".join(c.name for c in candidates),
                    requested,
                )
            )
        return entry
    available = [entry for entry in candidates if entry.available()]
    if not available:
        return candidates[-1]
    on_cpu = cpu_backends() if kind in ONNX_SUFFIXES else []
    if on_cpu:
        return _fastest_on_cpu(on_cpu, precision or "fp32")
    return available[0]


def cpu_backends() -> List[BackendEntry]:
    """The backends ``auto`` chooses among for ONNX where it runs on the CPU (no TensorRT,
    no CUDA in ONNX Runtime): the available ones of ``CPU_BACKENDS``; empty elsewhere."""
    available = [entry for entry in BACKENDS if ".onnx" in entry.runs and entry.available()]
    if not available or available[0].name != "onnxruntime" or onnxruntime_has_cuda():
        return []
    return [entry for entry in available if entry.name in CPU_BACKENDS]


CPU_BACKENDS = ("onnxruntime", "openvino")  # what runs ONNX on a CPU
# "auto" without an NVIDIA GPU: the CPU backend measured fastest for each precision
# (README, Measured numbers: 2-core AMD EPYC, FANet-18 at 512x1024). Where a precision is
# not listed, or its backends are missing, the table's order holds.
CPU_FASTEST = {
    "fp32": ("onnxruntime", "openvino"),
    "int8": ("openvino", "onnxruntime"),
}


def _fastest_on_cpu(available: List[BackendEntry], precision: str) -> BackendEntry:
    by_name = {entry.name: entry for entry in available}
    for name in CPU_FASTEST.get(precision, ()):
        if name in by_name:
            return by_name[name]
    return available[0]


def onnxruntime_has_cuda() -> bool:
    """Whether ONNX Runtime here has its CUDA execution provider."""
    from fanet.runtime.onnxruntime_backend import cuda_available

    return cuda_available()


def check_precision(entry: BackendEntry, precision: str) -> None:
    if precision not in entry.precisions:
        raise ConfigError(
            "the {} backend cannot run {} (it runs {})".format(
                entry.name, precision, ", ".join(entry.precisions)
            )
        )


def open_backend(
    model: Any,
    backend: str = "auto",
    device: Optional[str] = None,
    precision: Optional[str] = None,
    **options: Any,
) -> Backend:
    """Open ``model`` (a path to a .engine, .onnx or .pth, or a torch module) on a backend.

    ``backend="auto"`` picks TensorRT for engines (and for ONNX where TensorRT is
    installed, through the engine cache); for ONNX, ONNX Runtime with CUDA where it has
    it, else the CPU backend fastest at the precision (``CPU_FASTEST``); PyTorch for
    checkpoints; the choice is logged. ``options`` are the chosen
    backend's (``fanet.runtime.options``); any other is a ``ConfigError``.
    """
    return open_model(model, backend, device, precision, **options)[1]


def open_model(
    model: Any,
    backend: str = "auto",
    device: Optional[str] = None,
    precision: Optional[str] = None,
    typed_options: Optional[Any] = None,
    **options: Any,
) -> Tuple[Any, Backend]:
    """``open_backend``, also returning what was opened: for an ONNX, the sibling graph of
    ``precision`` (``resolve_model``), whose sidecar describes it. The backend's options
    come as keywords, or as its record (``typed_options``, ``fanet.runtime.options``)."""
    entry = choose_backend(model_kind(model), backend, precision)
    if precision is not None:
        check_precision(entry, precision)
    typed = options_for(entry.name, entry.options, options, typed_options)
    resolved = resolve_model(model, entry.name, precision)
    opened = entry.open(resolved, device, precision, typed)
    logger.info("backend: %s", opened.describe())
    return resolved, opened


def _engine_sidecar(path: str) -> Sidecar:
    """The sidecar an engine's record holds (``fanet-build`` writes it); ``MetadataError``
    where there is no readable record, or it holds none."""
    record_file = record_path(path)
    record = read_record(path)
    if record is None:
        raise MetadataError(
            "{} has no readable record {}: fanet-build writes one beside each engine (a file "
            "without one may not be an engine at all); rebuild it with fanet-build".format(
                path, record_file
            )
        )
    if record.sidecar is None:
        raise MetadataError(
            "{} holds no sidecar: rebuild the engine with fanet-build".format(record_file)
        )
    return record.sidecar


def resolve_model(model: Any, backend: str, precision: Optional[str]) -> Any:
    """What ``backend`` opens for ``model`` at ``precision``: for an ONNX, its sibling graph
    of that precision in its ``ArtefactSet`` (None: the graph given); else ``model``."""
    if not is_path(model):
        return model
    path = os.fspath(model)
    if precision is not None and os.path.splitext(path)[1].lower() in ONNX_SUFFIXES:
        return ArtefactSet.of(path).graph_for(backend, precision)
    return path


def sidecar_for(model: Any, backend: Optional[Backend] = None) -> Sidecar:
    """The sidecar of a model: beside an ONNX (or inside it), in an engine's record, or
    the opened ``backend``'s own (classes, temporal state) for checkpoints and modules."""
    suffix = os.path.splitext(os.fspath(model))[1].lower() if is_path(model) else MODULE
    if suffix in ONNX_SUFFIXES:
        path = os.fspath(model)
        ArtefactSet.of(path).check(variant_of(path))
        sidecar = read_sidecar(path)
        verify_sidecar(path, sidecar)
        return sidecar
    if suffix in ENGINE_SUFFIXES:
        return _engine_sidecar(os.fspath(model))
    described = getattr(backend, "sidecar", None)  # the torch backend's own, temporal too
    return described if isinstance(described, Sidecar) else Sidecar()
