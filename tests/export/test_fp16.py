"""FP16 graphs: FP32 islands around the fast attention keep large inputs finite."""

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from fanet.core.preprocess import preprocess
from fanet.core.synthetic import render_scene
from fanet.export.fp16 import attention_nodes, convert_to_fp16
from fanet.export.onnx_export import GraphForm, export_onnx
from fanet.model import create_model, model_from_checkpoint

VALUE_SCALE = 8.0
QUERY_KEY_SCALE = 64.0


def _large_attention_model(checkpoint):
    """The trained FANet-18, reparametrised so that its attention sums are 8x larger and
    its query/key projections 64x larger.

    Values v = LeakyReLU(BN(.)) scale exactly with the BN affine (LeakyReLU is positively
    homogeneous), and latlayer3's BN statistics absorb the factor (mean x s, var x s^2),
    as a trained network's can: the FP32 output is unchanged, while q (k^T v) reaches
    ~8e4 at 1024x2048 and ~3.6e5 at 2048x4096, past FP16's 65,504. Queries and keys are
    L2-normalised, so scaling their (linear) projections changes nothing either, but puts
    the ReduceL2 inputs past 256, where TensorRT's x*x overflows in FP16.
    """
    model = model_from_checkpoint(checkpoint)
    with torch.no_grad():
        for name in ("fam_32", "fam_16", "fam_8", "fam_4"):
            module = getattr(model, name)
            for projection in (module.w_qs, module.w_ks):
                projection.bn.weight.mul_(QUERY_KEY_SCALE)
                projection.bn.bias.mul_(QUERY_KEY_SCALE)
            module.w_vs.bn.weight.mul_(VALUE_SCALE)
            module.w_vs.bn.bias.mul_(VALUE_SCALE)
            module.latlayer3.bn.running_mean.mul_(VALUE_SCALE)
            module.latlayer3.bn.running_var.mul_(VALUE_SCALE**2)
            module.latlayer3.bn.eps *= VALUE_SCALE**2
    return model


def _session(model_proto):
    return onnxruntime.InferenceSession(
        model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )


@pytest.fixture(scope="module")
def graphs(tmp_path_factory, trained_checkpoint):
    path = tmp_path_factory.mktemp("fp16") / "fanet18_dynamic.onnx"
    export_onnx(_large_attention_model(trained_checkpoint), str(path), GraphForm(None, 17))
    fp32 = onnx.load(str(path))
    ours = convert_to_fp16(fp32, attention_nodes(fp32))
    naive = convert_to_fp16(fp32)
    protos = {"fp32": fp32, "ours": ours, "naive": naive}
    return {name: _session(proto) for name, proto in protos.items()} | {"protos": protos}


def _input(height, width):
    image, _ = render_scene(seed=5, height=height, width=width)
    return {"input": preprocess(image)}


def test_reparametrisation_keeps_the_output(trained_checkpoint):
    x = torch.from_numpy(_input(128, 256)["input"])
    with torch.no_grad():
        reference = model_from_checkpoint(trained_checkpoint)(x)
        torch.testing.assert_close(
            _large_attention_model(trained_checkpoint)(x), reference, rtol=1e-4, atol=1e-4
        )


@pytest.mark.slow
@pytest.mark.parametrize("size", [(1024, 2048), (2048, 4096)])
def test_fp16_with_fp32_attention_stays_finite_and_agrees(graphs, size):
    feed = _input(*size)
    reference = graphs["fp32"].run(None, feed)[0]
    result = graphs["ours"].run(None, feed)[0]
    assert np.isfinite(result).all()
    agreement = (result.argmax(1) == reference.argmax(1)).mean()
    print(f"FP16 (FP32 attention) vs FP32 at {size}: argmax agreement {agreement:.4%}")
    assert agreement >= 0.995, agreement


@pytest.mark.slow
def test_naive_fp16_overflows_where_ours_does_not(graphs):
    feed = _input(1024, 2048)
    naive = graphs["naive"].run(None, feed)[0]
    assert not np.isfinite(naive).all()  # the kT v / q(kT v) sums exceed 65,504
    assert np.isfinite(graphs["ours"].run(None, feed)[0]).all()


def test_attention_products_stay_fp32_and_io_types(tmp_path):
    path = tmp_path / "small.onnx"
    export_onnx(create_model("fanet18"), str(path), GraphForm((64, 128), 13))
    fp32 = onnx.load(str(path))
    for fp16_io, io_type in ((False, onnx.TensorProto.FLOAT), (True, onnx.TensorProto.FLOAT16)):
        converted = convert_to_fp16(fp32, attention_nodes(fp32), fp16_io=fp16_io)
        inferred = onnx.shape_inference.infer_shapes(converted).graph
        typed = list(inferred.value_info) + list(inferred.output)
        types = {v.name: v.type.tensor_type.elem_type for v in typed}
        matmuls = [n for n in inferred.node if n.op_type == "MatMul"]
        assert len(matmuls) == 8
        assert all(types[n.output[0]] == onnx.TensorProto.FLOAT for n in matmuls)
        convs = [n for n in inferred.node if n.op_type == "Conv" and "latlayer3" not in n.name]
        assert all(types[n.output[0]] == onnx.TensorProto.FLOAT16 for n in convs[:-1])
        assert inferred.input[0].type.tensor_type.elem_type == io_type
        assert inferred.output[0].type.tensor_type.elem_type == io_type


def _with_outputs(model, names):
    extended = onnx.ModelProto()
    extended.CopyFrom(model)
    extended.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names)
    return _session(extended)


def _tensorrt_reduce_l2_fp16(x):
    """ReduceL2 over channels as TensorRT imports it, x*x -> ReduceSum -> Sqrt, in FP16."""
    x16 = x.astype(np.float16)
    with np.errstate(over="ignore"):
        return np.sqrt((x16 * x16).sum(axis=1, dtype=np.float16))


def test_tensorrt_fp16_reduce_l2_overflows_where_our_graph_keeps_fp32(graphs):
    fp32, ours = graphs["protos"]["fp32"], graphs["protos"]["ours"]
    norm_inputs = [n.input[0] for n in fp32.graph.node if n.op_type == "ReduceL2"]
    assert len(norm_inputs) == 8
    values = _with_outputs(fp32, norm_inputs).run(norm_inputs, _input(512, 1024))
    emulated = [_tensorrt_reduce_l2_fp16(x) for x in values]
    overflowing = sum(not np.isfinite(e).all() for e in emulated)
    print(f"FP16 x*x -> ReduceSum -> Sqrt overflows on {overflowing} of 8 attention inputs")
    assert overflowing > 0
    assert all(np.isfinite(np.sqrt((x.astype(np.float32) ** 2).sum(axis=1))).all() for x in values)
    inferred = onnx.shape_inference.infer_shapes(ours).graph
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.value_info}
    types.update((t.name, t.data_type) for t in inferred.initializer)
    attention_ops = ("ReduceL2", "ReduceSumSquare", "Sqrt", "Div", "MatMul")
    reads = [
        (n.op_type, types.get(name))
        for n in inferred.node
        if n.op_type in attention_ops
        for name in n.input
    ]
    assert len([r for r in reads if r[0] == "ReduceL2"]) == 8
    assert all(dtype == onnx.TensorProto.FLOAT for _, dtype in reads), reads
    assert np.isfinite(graphs["ours"].run(None, _input(512, 1024))[0]).all()
