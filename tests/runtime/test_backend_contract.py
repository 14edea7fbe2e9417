"""One contract over every backend available here: same labels, outputs within tolerance."""

import numpy as np
import pytest

from fanet.core.host import host_available
from fanet.core.synthetic import render_scene
from fanet.runtime.backend import BackendError
from fanet.runtime.registry import backend_entry, open_backend
from fanet.runtime.segmenter import Segmenter
from fanet.runtime.trt.versions import installed_tensorrt_version


def _available(exported_trained, trained_checkpoint):
    """(backend, model) for every backend that runs here; the torch one (the reference,
    the model's own code) first where the host side is installed; OpenVINO where its
    extra is installed (the dev extra installs it)."""
    cases = [("onnxruntime", str(exported_trained))]
    if host_available():
        cases.insert(0, ("torch", str(trained_checkpoint)))
    if installed_tensorrt_version() is not None:
        cases.append(("tensorrt", str(exported_trained)))
    if backend_entry("openvino").available():
        cases.append(("openvino", str(exported_trained)))
    return cases


@pytest.fixture(scope="module")
def images():
    return [render_scene(seed, 128, 256)[0] for seed in (100, 101, 102)]


def test_every_backend_gives_the_same_labels(exported_trained, trained_checkpoint, images):
    cases = _available(exported_trained, trained_checkpoint)
    labels, logits = {}, {}
    for name, path in cases:
        with Segmenter.from_file(path, backend=name) as seg:
            assert seg.backend.name == name
            labels[name] = np.stack([seg(image) for image in images])
            logits[name] = np.stack([seg.logits(image) for image in images])
    reference = cases[0][0]
    for name, found in labels.items():
        assert found.shape == (3, 128, 256) and found.dtype == np.uint8
        assert (found == labels[reference]).mean() >= 0.999, name
        scale = np.abs(logits[reference]).max()
        assert np.abs(logits[name] - logits[reference]).max() / scale <= 1e-4, name


def test_backend_protocol(exported_trained, trained_checkpoint):
    for name, path in _available(exported_trained, trained_checkpoint):
        with open_backend(path, backend=name) as backend:
            spec = backend.input_specs[0]
            assert spec.name == "input" and spec.shape[:2] == (1, 3)
            x = np.zeros((1, 3, 128, 256), np.float32)
            out = backend.infer({"input": x})
            assert set(out) == {s.name for s in backend.output_specs}
            assert next(iter(out.values())).shape == (1, 19, 16, 32)
            with pytest.raises(Exception, match="shape|input"):
                backend.infer({"input": np.zeros((1, 4, 128, 256), np.float32)})
        backend.close()  # a second close does nothing
        with pytest.raises(BackendError, match=f"the {name} backend is closed"):
            backend.infer({"input": x})


@pytest.mark.parametrize(
    "path,backend,message",
    [
        ("missing.onnx", "auto", "model file not found"),
        ("model.txt", "auto", "cannot tell the model type"),
        ("EXPORTED", "tensorflow", "unknown backend 'tensorflow'"),
        ("EXPORTED", "torch", ".onnx files"),
    ],
)
def test_bad_backend_requests(exported_trained, path, backend, message):
    from fanet.core.errors import FanetError

    path = str(exported_trained) if path == "EXPORTED" else path
    with pytest.raises(FanetError, match=message):
        open_backend(path, backend=backend)
