"""ONNX Runtime's own failures, said so the user knows what to do; its telemetry, off; its
idle threads asleep."""

import os
import subprocess
import sys

from fanet.runtime.onnxruntime_backend import OnnxRuntimeBackend, _load_error

from support.artefacts import fp32_graph, host_artefact

# What ONNX Runtime 1.10 (the last for Python 3.6, JetPack 4.6) says of an opset-17 graph.
ORT_1_10_MESSAGE = (
    "[ONNXRuntimeError] : 1 : FAIL : Load model from fanet18_64x128.onnx failed:/onnxruntime_src/"
    "onnxruntime/core/graph/model_load_utils.h:47 void onnxruntime::model_load_utils::"
    "ValidateOpsetForDomain(...) ONNX Runtime only *guarantees* support for models stamped with "
    "official released onnx opset versions. Opset 17 is under development and support for this "
    "is limited. [...] Current official support for domain ai.onnx is till opset 15."
)


def test_an_opset_newer_than_onnxruntime_reads_says_which_to_export():
    graph = str(fp32_graph(host_artefact("export_set")))
    message = _load_error("1.10.0", graph, ORT_1_10_MESSAGE)
    assert message == (
        "ONNX Runtime 1.10.0 reads ONNX opsets up to 15 and {} uses opset 13: export it with "
        "--opset 13 (read by ONNX Runtime 1.10+ and TensorRT 8.2+) or upgrade onnxruntime"
    ).format(graph)


def test_other_failures_keep_onnxruntimes_words():
    assert _load_error("1.32.0", "m.onnx", "Protobuf parsing failed.") == (
        "onnxruntime 1.32.0 cannot load m.onnx: Protobuf parsing failed."
    )


def _run_python(code: str, **environment: str) -> str:
    env = {key: value for key, value in os.environ.items() if key != "ORT_DISABLE_TELEMETRY"}
    env.update(environment)
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        check=True,
    )
    return done.stdout.strip()


def test_onnx_runtime_runs_without_its_telemetry_files(tmp_path):
    """No telemetry session file in TMPDIR, no device ID under ~/.cache/Microsoft."""
    graph = fp32_graph(host_artefact("tiny_export"))
    temporary, home = tmp_path / "tmp", tmp_path / "home"
    temporary.mkdir()
    home.mkdir()
    code = (
        "import numpy as np\n"
        "from fanet.runtime.segmenter import Segmenter\n"
        "with Segmenter.from_file({!r}, backend='onnxruntime') as segmenter:\n"
        "    print(segmenter(np.zeros((32, 64, 3), np.uint8)).shape)\n"
    ).format(str(graph))
    assert _run_python(code, TMPDIR=str(temporary), HOME=str(home)) == "(32, 64)"
    assert list(temporary.iterdir()) == []
    assert not (home / ".cache" / "Microsoft").exists()


def test_a_telemetry_choice_of_the_user_is_kept():
    code = "import os, fanet; print(os.environ['ORT_DISABLE_TELEMETRY'])"
    assert _run_python(code) == "1"
    assert _run_python(code, ORT_DISABLE_TELEMETRY="0") == "0"


def test_idle_cpu_threads_sleep_instead_of_spinning():
    """A session's idle threads sleep: they burn no CPU between frames and do not slow the
    next model's session on the same cores (README: Python API, measured)."""
    graph = str(fp32_graph(host_artefact("tiny_export")))
    with OnnxRuntimeBackend(graph, threads=2) as backend:
        options = backend._session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
