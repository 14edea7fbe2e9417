"""The backend table: auto-selection, precisions, typed options, paths of any kind."""

from pathlib import Path

import pytest

from fanet.core.errors import ConfigError, MissingDependencyError
from fanet.runtime import registry
from fanet.runtime.options import BuildOptions, TensorRTOptions, options_for
from fanet.runtime.registry import MODULE, choose_backend, open_backend
from fanet.runtime.segmenter import Segmenter
from fanet.runtime.trt.versions import installed_tensorrt_version


@pytest.mark.parametrize(
    "kind,tensorrt_here,chosen",
    [
        (".engine", False, "tensorrt"),
        (".plan", True, "tensorrt"),
        (".onnx", True, "tensorrt"),
        (".onnx", False, "onnxruntime"),
        (".pth", True, "torch"),
        (MODULE, True, "torch"),
    ],
)
def test_auto_selection_follows_the_table(monkeypatch, kind, tensorrt_here, chosen):
    monkeypatch.setattr(
        registry, "installed_tensorrt_version", lambda: (10, 3) if tensorrt_here else None
    )
    assert choose_backend(kind).name == chosen


def test_a_backend_that_cannot_run_the_file_is_named():
    with pytest.raises(Exception, match=r"\.pth files run with torch, not onnxruntime"):
        choose_backend(".pth", "onnxruntime")
    with pytest.raises(
        ConfigError, match="choose one of: auto, tensorrt, onnxruntime, openvino, torch"
    ):
        choose_backend(".onnx", "tensorflow")


@pytest.mark.parametrize(
    "backend,options,message",
    [
        ("tensorrt", {"threads": 2}, "the tensorrt backend takes no option 'threads'"),
        (
            "onnxruntime",
            {"cuda_graph": True},
            "the onnxruntime backend takes no option 'cuda_graph' (its options: threads)",
        ),
        ("onnxruntime", {"fuse": False, "workspace": 1}, "no option 'fuse', 'workspace'"),
    ],
)
def test_unknown_options_are_refused_before_anything_opens(
    exported_trained, backend, options, message
):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_backend(exported_trained, backend=backend, **options)


def test_options_become_typed_records():
    options = options_for(
        "tensorrt", TensorRTOptions, {"cuda_graph": True, "build": BuildOptions(workspace_mib=256)}
    )
    assert options.cuda_graph and options.build.workspace_mib == 256 and options.cache_dir is None


def test_a_backend_takes_its_own_record_and_only_that():
    record = TensorRTOptions(cuda_graph=True)
    assert options_for("tensorrt", TensorRTOptions, {}, record) is record
    with pytest.raises(ConfigError, match="takes a TensorRTOptions record .* not BuildOptions"):
        options_for("tensorrt", TensorRTOptions, {}, BuildOptions())
    with pytest.raises(ConfigError, match="or keyword options, not both"):
        options_for("tensorrt", TensorRTOptions, {"rebuild": True}, record)


def test_precisions_per_backend(exported_trained):
    with pytest.raises(ConfigError, match="the torch backend cannot run int8"):
        registry.check_precision(registry.backend_entry("torch"), "int8")
    registry.check_precision(registry.backend_entry("onnxruntime"), "int8")


@pytest.mark.skipif(installed_tensorrt_version() is not None, reason="TensorRT is installed")
def test_tensorrt_asked_for_where_it_is_missing_names_what_to_install(exported_trained):
    with pytest.raises(MissingDependencyError, match="the tensorrt backend needs TensorRT"):
        open_backend(exported_trained, backend="tensorrt")


def test_path_objects_open_files_with_their_sidecar(exported_trained):
    assert isinstance(exported_trained, Path)
    with Segmenter.from_file(exported_trained) as seg:
        assert seg.backend.name == ("tensorrt" if installed_tensorrt_version() else "onnxruntime")
        assert seg.sidecar.input_size == (128, 256) and seg.sidecar.arch == "fanet18"


@pytest.mark.host
def test_checkpoints_and_modules_open_on_torch(trained_checkpoint):
    from fanet.model import create_model

    with open_backend(Path(trained_checkpoint)) as backend:
        assert backend.name == "torch" and backend.num_classes == 19
    model = create_model("fanet18", 5)
    with open_backend(model, precision="fp32") as backend:
        assert backend.name == "torch" and registry.sidecar_for(model, backend).num_classes == 5
