"""ONNX -> TensorRT engine, on the device that will run it (Python 3.6 compatible).

The version dispatch (API path, flags, which ONNX variant) comes from
``fanet.runtime.trt.versions.build_plan``; this module only carries it out.
"""

import logging
import os
import time
from typing import Any, Dict, List, Optional, Tuple

import tensorrt as trt

from fanet import __version__
from fanet.conformance.check import buildable_graph
from fanet.core.artefact_set import ArtefactSet
from fanet.core.attention_islands import IslandError, attention_islands
from fanet.core.engine_record import EngineError, EngineRecord, record_path, write_record
from fanet.core.errors import ConfigError
from fanet.core.files import check_replaceable, sha256_file
from fanet.core.onnx_graph import Graph
from fanet.core.set_writer import SetWriter
from fanet.core.sidecar import Sidecar, read_sidecar, verify_sidecar
from fanet.runtime.options import BuildOptions, Size
from fanet.runtime.trt.cuda import load_cuda_api
from fanet.runtime.trt.logger import TRT_LOGGER, create_builder
from fanet.runtime.trt.machine import this_machine
from fanet.runtime.trt.precision import pin_fp32
from fanet.runtime.trt.timing_cache import attach_timing_cache, merge_timing_cache
from fanet.runtime.trt.versions import (
    BuildPlan,
    build_plan,
    parse_version,
    reports_fast_precisions,
)

logger = logging.getLogger(__name__)

JETSON_WORKSPACE_MIB = 256


def is_jetson() -> bool:
    return os.path.exists("/etc/nv_tegra_release")


def cache_calibrator(cache_path: str) -> "trt.IInt8Calibrator":
    """An implicit-INT8 calibrator (TensorRT 8.x-10.x; 11.x has none) that takes every
    scale from the cache ``fanet-export --int8`` writes. Its class is made here, not at
    import, since ``trt.IInt8EntropyCalibrator2`` exists only in those versions."""

    class CacheCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: List[str]) -> None:  # type: ignore[override]
            return None  # no data: every scale comes from the cache (as NVIDIA's samples)

        def read_calibration_cache(self) -> bytes:
            with open(cache_path, "rb") as stream:
                return stream.read()

        def write_calibration_cache(self, cache: Any) -> None:
            logger.debug("TensorRT returned a calibration cache of %d bytes", len(bytes(cache)))

    return CacheCalibrator()


def _profile_shapes(
    sidecar: Sidecar, profile: Optional[Tuple[Size, Size, Size]]
) -> Optional[Dict[str, Dict[str, List[int]]]]:
    """The optimization profile of every input with a dynamic axis, by name: the image's
    sides (``--min/--opt/--max``) and, for ``--max-batch N`` exports, the batch axis of the
    image and of the temporal state (1 .. N, tuned for N)."""
    batch = sidecar.max_batch
    if not sidecar.dynamic:
        if profile:
            raise ConfigError("--min/--opt/--max need an ONNX exported with --dynamic")
        if batch == 1:
            return None
        assert sidecar.input_size is not None, "a fixed-size export records its size"
        profile = (sidecar.input_size, sidecar.input_size, sidecar.input_size)
    if profile is None:
        raise ConfigError("a dynamic ONNX needs an optimization profile: --min, --opt and --max")
    minimum, optimum, maximum = profile
    if not (minimum[0] <= optimum[0] <= maximum[0] and minimum[1] <= optimum[1] <= maximum[1]):
        raise ConfigError("the profile must satisfy min <= opt <= max in both sides")
    shapes = {
        sidecar.input_name: {
            "min": [1, 3, minimum[0], minimum[1]],
            "opt": [batch, 3, optimum[0], optimum[1]],
            "max": [batch, 3, maximum[0], maximum[1]],
        }
    }
    if batch > 1:
        for state in sidecar.state:
            rest = list(state.shape[1:])
            shapes[state.input] = {"min": [1] + rest, "opt": [batch] + rest, "max": [batch] + rest}
    return shapes


def _create_network(builder: "trt.Builder", plan: BuildPlan) -> "trt.INetworkDefinition":
    flags = 0
    if plan.explicit_batch_flag:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if plan.strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return builder.create_network(flags)


def _configure(
    builder: "trt.Builder", plan: BuildPlan, workspace_mib: Optional[int], dla_core: Optional[int]
) -> "trt.IBuilderConfig":
    config = builder.create_builder_config()
    if workspace_mib is None and is_jetson():
        workspace_mib = JETSON_WORKSPACE_MIB
    if workspace_mib is not None:
        size = int(workspace_mib) << 20
        if plan.workspace_api == "max_workspace_size":  # TensorRT 8.2-8.3
            config.max_workspace_size = size  # type: ignore[attr-defined]
        else:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, size)
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if dla_core is not None:
        if builder.num_DLA_cores <= dla_core:
            raise ConfigError(
                "DLA core {} requested; this device has {}".format(dla_core, builder.num_DLA_cores)
            )
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    return config


def build_engine(
    onnx_path: str,
    precision: str = "fp32",
    engine_path: Optional[str] = None,
    options: BuildOptions = BuildOptions(),
) -> str:
    """Build an engine of ``precision`` from the export beside ``onnx_path``; returns its path."""
    exported = ArtefactSet.of(onnx_path)
    if not exported.graphs():
        raise EngineError("ONNX file not found: {}".format(onnx_path))
    builder = create_builder()
    machine = this_machine(load_cuda_api())  # before minutes of building, not after
    plan = _plan(builder, exported, precision, options.implicit_int8)
    source = exported.graph(plan.onnx_variant)
    sidecar, graph = _checked_source(source, plan, precision)
    shapes = _profile_shapes(sidecar, options.profile)
    engine_path = engine_path or exported.engine(precision)
    for path in (engine_path, record_path(engine_path)):
        check_replaceable(path, options.force)  # before minutes of building, not after

    network = _parsed_network(builder, plan, source)
    config = _configure(builder, plan, options.workspace_mib, options.dla_core)
    if plan.pin_attention_fp32:
        _pin_attention(network, graph)
    if shapes:
        config.add_optimization_profile(_optimization_profile(builder, shapes))
    if plan.implicit_calibration:
        config.int8_calibrator = _implicit_calibrator(exported)  # 8.x-10.x (deprecated: 10.1)
    attach_timing_cache(config, options.timing_cache)
    logger.info(
        "building %s engine from %s (TensorRT %s, flags %s, %s)",
        precision,
        os.path.basename(source),
        trt.__version__,
        ",".join(plan.builder_flags) or "none",
        "strongly typed" if plan.strongly_typed else "weakly typed",
    )
    started = time.monotonic()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError("TensorRT failed to build the engine (see the log above)")
    logger.info("engine built in %.1f s", time.monotonic() - started)
    record = EngineRecord(
        *machine,
        precision=precision,
        onnx_path=os.path.abspath(source),
        onnx_sha256=sha256_file(source),
        input_shape=[1, 3] + list(sidecar.input_size) if sidecar.input_size else None,
        profile=shapes[sidecar.input_name] if shapes else None,  # the image's
        profiles=shapes,
        builder_flags=list(plan.builder_flags),
        strongly_typed=plan.strongly_typed,
        implicit_int8=plan.implicit_calibration,
        workspace_mib=options.workspace_mib,
        dla_core=options.dla_core,
        fanet_version=__version__,
        sidecar=sidecar,
    )
    _write_engine(engine_path, bytes(serialized), record, options.force)
    merge_timing_cache(config, options.timing_cache)
    return engine_path


def _plan(
    builder: "trt.Builder", exported: ArtefactSet, precision: str, implicit_int8: bool
) -> BuildPlan:
    """How this TensorRT builds ``precision`` from the set: API path, flags, which graph."""
    version = parse_version(trt.__version__)
    fast_int8 = fast_fp16 = True  # 11.x has no such queries: precision is in the graph
    if reports_fast_precisions(version):
        fast_int8, fast_fp16 = builder.platform_has_fast_int8, builder.platform_has_fast_fp16
    variants = tuple(exported.graphs())
    plan = build_plan(version, precision, variants, implicit_int8, fast_int8, fast_fp16)
    exported.check(plan.onnx_variant)
    return plan


def _checked_source(source: str, plan: BuildPlan, precision: str) -> Tuple[Sidecar, Graph]:
    """The sidecar and parsed graph of ``source``, checked against its hash, the opsets
    this TensorRT parses and its parser rules."""
    version = parse_version(trt.__version__)
    sidecar = read_sidecar(source)
    verify_sidecar(source, sidecar, sha256_file(source))
    if (sidecar.opset or 0) > plan.max_opset:
        raise ConfigError(
            "{} uses opset {}; TensorRT {}.{} parses at most {}: re-export with --opset {}".format(
                source, sidecar.opset, version[0], version[1], plan.max_opset, plan.max_opset
            )
        )
    graph = buildable_graph(source, version)
    if precision == "int8" and plan.strongly_typed and plan.onnx_variant == "int8":
        logger.warning(
            "%s has FP32 float parts: TensorRT %d.%d runs every unquantized layer in FP32 "
            "(re-export with --int8 for the FP16-typed _int8_fp16.onnx)",
            os.path.basename(source),
            version[0],
            version[1],
        )
    return sidecar, graph


def _parsed_network(
    builder: "trt.Builder", plan: BuildPlan, source: str
) -> "trt.INetworkDefinition":
    network = _create_network(builder, plan)
    parser = trt.OnnxParser(network, TRT_LOGGER)
    with open(source, "rb") as stream:
        parsed = parser.parse(stream.read())
    if not parsed:
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineError(
            "TensorRT cannot parse {}: {}".format(source, "; ".join(errors) or "unknown error")
        )
    return network


def _optimization_profile(
    builder: "trt.Builder", shapes: Dict[str, Dict[str, List[int]]]
) -> "trt.IOptimizationProfile":
    optimization = builder.create_optimization_profile()
    for name, ranges in shapes.items():
        optimization.set_shape(
            name, trt.Dims(ranges["min"]), trt.Dims(ranges["opt"]), trt.Dims(ranges["max"])
        )
    return optimization


def _implicit_calibrator(exported: ArtefactSet) -> "trt.IInt8Calibrator":
    cache = exported.tensorrt_cache
    if not os.path.isfile(cache):
        raise ConfigError("implicit INT8 needs {} (written by fanet-export --int8)".format(cache))
    return cache_calibrator(cache)


def _write_engine(engine_path: str, serialized: bytes, record: EngineRecord, force: bool) -> None:
    """The engine and its record, together or not at all."""
    with SetWriter(engine_path, force) as files:
        with open(files.stage(engine_path), "wb") as stream:
            stream.write(serialized)
        write_record(engine_path, record, to=files.stage(record_path(engine_path)))
        files.commit()


def _pin_attention(network: "trt.INetworkDefinition", graph: Graph) -> None:
    """Keep the fast attention FP32 in a weakly typed FP16/INT8 build."""
    try:
        islands = attention_islands(graph.nodes, graph.constants())
    except IslandError as exc:
        raise EngineError(str(exc)) from None
    pinned = pin_fp32(network, islands)
    logger.info("pinned %d layers of the fast attention to FP32", len(pinned))


def build_for_exports(onnx_path: str) -> List[str]:
    """Engines for every precision exported beside ``onnx_path`` (``fanet-export
    --build-engines``)."""
    variants = ArtefactSet.of(onnx_path).graphs()
    precisions = [p for p in ("fp32", "fp16", "int8") if p == "fp32" or p in variants]
    return [build_engine(onnx_path, precision) for precision in precisions]
