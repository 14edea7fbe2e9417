"""Version dispatch: API path, builder flags and ONNX variant per TensorRT version."""

import pytest

from fanet.core.errors import ConfigError
from fanet.runtime.trt.versions import (
    build_plan,
    max_onnx_opset,
    parse_version,
    runtime_plan,
)

ALL = ("fp32", "fp16", "int8")


@pytest.mark.parametrize(
    "version,io_api,opset,workspace,explicit_batch",
    [
        ("8.2.1.8", "bindings", 13, "max_workspace_size", True),
        ("8.5.2", "named_tensors", 17, "memory_pool_limit", True),
        ("8.6.1.6", "named_tensors", 17, "memory_pool_limit", True),
        ("10.0.1", "named_tensors", 20, "memory_pool_limit", False),
        ("10.4.0", "named_tensors", 20, "memory_pool_limit", False),
        ("10.12.0.36", "named_tensors", 20, "memory_pool_limit", False),
        ("10.15.1", "named_tensors", 24, "memory_pool_limit", False),
        ("11.4.0", "named_tensors", 24, "memory_pool_limit", False),
    ],
)
def test_api_generation(version, io_api, opset, workspace, explicit_batch):
    parsed = parse_version(version)
    assert runtime_plan(parsed).io_api == io_api
    assert max_onnx_opset(parsed) == opset
    plan = build_plan(parsed, "fp32", ALL)
    assert plan.workspace_api == workspace and plan.explicit_batch_flag == explicit_batch


OBEY = "OBEY_PRECISION_CONSTRAINTS"


@pytest.mark.parametrize("version", ["8.2", "8.5", "8.6", "10.0", "10.4", "10.8"])
@pytest.mark.parametrize(
    "precision,variant,flags",
    [
        ("fp32", "fp32", ()),
        ("fp16", "fp32", ("FP16", OBEY)),
        ("int8", "int8", ("INT8", "FP16", OBEY)),
    ],
)
def test_weakly_typed_versions_use_flags(version, precision, variant, flags):
    plan = build_plan(parse_version(version), precision, ALL)
    assert (plan.onnx_variant, plan.builder_flags, plan.strongly_typed) == (variant, flags, False)


@pytest.mark.parametrize("precision", ALL)
def test_tensorrt_11_is_strongly_typed_without_flags(precision):
    plan = build_plan(parse_version("11.4.0"), precision, ALL + ("int8_fp16",))
    assert plan.strongly_typed and plan.builder_flags == ()
    assert plan.onnx_variant == {"int8": "int8_fp16"}.get(precision, precision)


def test_fp16_on_11_needs_the_fp16_graph():
    with pytest.raises(
        ConfigError, match="FP16 ONNX graph, which is missing: run fanet-export --fp16"
    ):
        build_plan(parse_version("11.0"), "fp16", ("fp32",))
    assert build_plan(parse_version("10.12"), "fp16", ("fp32",)).builder_flags == ("FP16", OBEY)


def test_int8_needs_the_qdq_graph_or_a_calibrator():
    with pytest.raises(ConfigError, match="INT8 ONNX graph"):
        build_plan(parse_version("10.4"), "int8", ("fp32",))
    plan = build_plan(parse_version("8.2"), "int8", ("fp32",), implicit_calibration=True)
    assert plan.onnx_variant == "fp32" and plan.implicit_calibration
    with pytest.raises(ConfigError, match="TensorRT 11 has no calibrators"):
        build_plan(parse_version("11.0"), "int8", ALL, implicit_calibration=True)


def test_requests_the_gpu_cannot_meet():
    with pytest.raises(ConfigError, match="no fast INT8"):
        build_plan(parse_version("8.2"), "int8", ALL, fast_int8=False)
    with pytest.raises(ConfigError, match="unknown precision"):
        build_plan(parse_version("10.0"), "bf8", ALL)
    with pytest.raises(ConfigError, match="cannot parse"):
        parse_version("latest")


def test_versions_compare_as_numbers_not_strings():
    assert parse_version("10.0") > parse_version("9.9") > parse_version("8.10")
    assert runtime_plan(parse_version("10.0")).io_api == "named_tensors"
