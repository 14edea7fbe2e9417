"""fanet-trt-bench end to end on the CPU: figures, formats, schema, plot, bad input."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from fanet.bench import measure as bench_measure
from fanet.bench import plan as bench_plan
from fanet.cli.device import bench
from fanet.core.errors import ConfigError

from support.commands import captured

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "docs" / "bench-schema.json").read_text())
FAST = ["--warmup", "0", "--iterations", "3", "--threads", "2"]


def _run(*args, cwd=None):
    result = captured(
        [sys.executable, "-m", "fanet.cli.device.bench", *args],
        cwd=cwd,
    )
    return result.returncode, result.stdout, result.stderr


def test_json_validates_and_holds_every_statistic(exported_trained, capsys):
    code = bench.main(
        [
            "--onnx",
            str(exported_trained),
            "--res",
            "128x256",
            "--backend",
            "onnxruntime",
            "--json",
            *FAST,
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    jsonschema.validate(report, SCHEMA)
    (entry,) = report["results"]
    assert (entry["backend"], entry["precision"], entry["resolution"]) == (
        "onnxruntime",
        "fp32",
        "128x256",
    )
    host = entry["stats"]["host"]
    assert host["iterations"] == 3 and host["min_ms"] <= host["median_ms"] <= host["max_ms"]
    assert entry["fps"] == pytest.approx(1000 / host["median_ms"])
    pipeline = entry["stats"]["pipeline"]
    assert pipeline["iterations"] == 3
    assert pipeline["min_ms"] <= pipeline["median_ms"] <= pipeline["max_ms"]
    assert entry["stats"]["compute"]["same_as_host"] == 1.0
    device = report["device"]
    assert set(device["cpu_isa"]) == {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx"}
    assert device["cpu_usable"] >= 1 and "openvino" in device["versions"]


def test_table_markdown_csv_and_plot(exported_trained, tmp_path, capsys):
    args = ["--onnx", str(exported_trained), "--res", "128x256", "--backend", "onnxruntime", *FAST]
    plot = tmp_path / "fps.png"
    assert bench.main([*args, "--plot", str(plot)]) == 0
    table = capsys.readouterr().out
    assert "backend / precision" in table and "onnxruntime fp32" in table
    assert "FPS = 1000 / median latency of host latency" in table
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    assert bench.main([*args, "--markdown", "--metric", "pipeline"]) == 0
    assert capsys.readouterr().out.startswith("| backend / precision | 128x256 |")
    assert bench.main([*args, "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("backend,precision,variant,resolution,metric,fps")
    assert lines[1].startswith("onnxruntime,fp32,,128x256,host,")


@pytest.mark.host
def test_torch_eager_row_beside_onnxruntime(trained_checkpoint, tmp_path, capsys):
    assert (
        bench.main(
            [
                "--weights",
                str(trained_checkpoint),
                "--res",
                "64x128",
                "--res",
                "64x64",
                "--backend",
                "onnxruntime",
                "--torch-eager",
                "--json",
                "--work-dir",
                str(tmp_path),
                *FAST,
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    measured = [(e["resolution"], e["label"]) for e in report["results"]]
    assert measured == [  # resolution-major: compared rows are measured back to back
        ("64x128", "onnxruntime fp32"),
        ("64x128", "torch eager fp32"),
        ("64x64", "onnxruntime fp32"),
        ("64x64", "torch eager fp32"),
    ]
    assert all(e["fps"] > 0 for e in report["results"])


def test_more_threads_than_four_per_cpu_is_warned_about(exported_trained, caplog):
    threads = 4 * (os.cpu_count() or 1) + 1
    args = ["--onnx", str(exported_trained), "--res", "128x256", "--backend", "onnxruntime"]
    assert bench.main([*args, *FAST, "--threads", str(threads), "--json"]) == 0
    assert f"--threads {threads} is more than 4 per CPU" in caplog.text


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["--backend", "tensorflow"], 2, "invalid choice"),
        (["--backend", "torch", "--precision", "int8"], 1, "torch backend cannot run int8"),
        (["--backend", "onnxruntime", "--res", "256x512"], 1, "exported for 128x256, not 256x512"),
        (["--backend", "onnxruntime", "--precision", "fp16"], 1, "no fp16 graph beside"),
        (["--res", "0x10"], 2, "resolution"),
        (["--duration", "nan"], 2, "finite number of seconds > 0"),
        (["--duration", "inf"], 2, "finite number of seconds > 0"),
        (["--warmup", "-1"], 2, "finite number of seconds >= 0"),
        (["--threads", "0"], 2, "expected a number >= 1"),
        (["--iterations", "0"], 2, "expected a number >= 1"),
        (["--plot", "/nonexistent/folder/fps.png"], 1, "--plot folder /nonexistent/folder does"),
        (["--plot", "/"], 1, "/ is a folder, not a file"),
    ],
)
def test_bad_requests(exported_trained, args, code, message):
    got, _, stderr = _run("--onnx", str(exported_trained), *FAST, *args)
    assert got == code and message in stderr and "Traceback" not in stderr


def test_ctrl_c_prints_what_was_measured(exported_trained, monkeypatch, capsys):
    real_measure = bench_measure.measure_together
    calls = []

    def interrupted_second_time(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_measure(*args, **kwargs)

    monkeypatch.setattr(bench_plan, "measure_together", interrupted_second_time)
    code = bench.main(
        [
            "--onnx",
            str(exported_trained),
            "--res",
            "128x256",
            "--res",
            "128x256",
            "--backend",
            "onnxruntime",
            "--json",
            *FAST,
        ]
    )
    captured = capsys.readouterr()
    assert code == 130 and "interrupted" in captured.err
    report = json.loads(captured.out)
    assert report["interrupted"] is True
    assert report["results"][0]["fps"] > 0 and report["results"][1]["fps"] is None


def _bench_without(modules, argv, cwd):
    """fanet-trt-bench in a Python where ``modules`` cannot be imported."""
    blocked = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        f"        if name.split('.')[0] in {tuple(modules)!r}:\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from fanet.cli.device.bench import main\n"
        f"raise SystemExit(main({list(argv)!r}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return captured(
        [sys.executable, "-c", blocked],
        cwd=cwd,
        env=env,
    )


def test_no_model_anywhere_without_the_host_side(tmp_path):
    result = _bench_without(
        ("torch", "onnx"), ["--backend", "onnxruntime", "--iterations", "1"], tmp_path
    )
    assert result.returncode == 1, result.stderr
    assert "no model: pass --engine or --onnx, or run in a folder holding" in result.stderr
    assert "exporting one with random weights needs the host side" in result.stderr


def test_plot_without_matplotlib_is_refused_before_measuring(exported_trained, tmp_path):
    argv = ["--onnx", str(exported_trained), "--res", "128x256", "--plot", "fps.png", *FAST]
    result = _bench_without(("matplotlib",), argv, tmp_path)
    assert result.returncode == 1, result.stderr
    assert (
        result.stderr
        == "fanet-trt-bench: error: matplotlib is not installed: pip install 'fanet[bench]'\n"
    )
    assert not (tmp_path / "fps.png").exists()


def test_nan_outputs_are_refused(exported_trained):
    import numpy as np

    from fanet.bench.measure import BenchmarkError, Budget, measure
    from fanet.runtime.segmenter import Segmenter

    with Segmenter.from_file(str(exported_trained), backend="onnxruntime") as seg:
        seg.backend.infer = lambda feed: {"logits": np.full((1, 19, 16, 32), np.nan, np.float32)}
        with pytest.raises(BenchmarkError, match="NaN or Inf"):
            measure(seg, (128, 256), Budget(0, None, 1))


def test_sigterm_prints_what_was_measured_and_exits_143(exported_trained):
    command = [sys.executable, "-m", "fanet.cli.device.bench", "--onnx", str(exported_trained)]
    command += ["--res", "128x256", "--backend", "onnxruntime", "--json", "--warmup", "0"]
    command += ["--duration", "120", "--threads", "2"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, cwd=ROOT
    )
    log = []
    while not any("measuring" in line for line in log):
        line = process.stderr.readline()
        assert line, "".join(log)
        log.append(line)
    time.sleep(2)  # inside the host-latency loop
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    report = json.loads(stdout)
    assert report["interrupted"] is True and report["results"][0]["fps"] > 0
    assert "interrupted" in stderr and "Traceback" not in stderr


def test_a_missing_graph_names_the_export_flag_that_exists(tmp_path):
    fp16 = tmp_path / "m_fp16.onnx"
    fp16.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"no fp32 graph beside .*: run fanet-export$"):
        bench_plan.onnx_variant(str(fp16), bench_plan.Row("onnxruntime", "fp32", ""), (64, 64))
    wanted = "no int8_onnxruntime graph .*fanet-export --int8 --calib-data DIR$"
    with pytest.raises(ConfigError, match=wanted):
        bench_plan.onnx_variant(str(fp16), bench_plan.Row("onnxruntime", "int8", ""), (64, 64))


def _single_conv_onnx(path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((19, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["logits"])],
        "not_fanet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 19, 64, 64])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_a_graph_that_is_not_fanet_is_refused_unless_forced(tmp_path, capsys):
    conv = tmp_path / "conv.onnx"
    _single_conv_onnx(conv)
    args = ["--onnx", str(conv), "--res", "64x64", "--backend", "onnxruntime", *FAST]
    assert bench.main(args) == 1
    assert capsys.readouterr().err.strip() == (
        f"fanet-trt-bench: error: {conv} has no sidecar, no fanet metadata and no "
        "fast-attention block: pass --force to measure it anyway"
    )
    assert bench.main([*args, "--force"]) == 0
    assert "onnxruntime fp32" in capsys.readouterr().out


def test_a_lone_fanet_graph_without_sidecar_or_metadata_is_recognised(exported_trained, tmp_path):
    import onnx

    proto = onnx.load(str(exported_trained))
    del proto.metadata_props[:]
    lone = tmp_path / "lone.onnx"
    onnx.save(proto, str(lone))
    assert bench_plan.why_not_fanet(str(lone)) is None  # found by its attention blocks


def test_a_graph_made_from_another_fp32_graph_is_refused(exported_trained, tmp_path):
    for suffix in (".onnx", ".json"):
        shutil.copy(exported_trained.with_suffix(suffix), tmp_path / f"m{suffix}")
        shutil.copy(exported_trained.with_suffix(suffix), tmp_path / f"m_fp16{suffix}")
    sidecar = json.loads((tmp_path / "m_fp16.json").read_text())
    (tmp_path / "m_fp16.json").write_text(json.dumps(dict(sidecar, fp32_sha256="0" * 64)))
    row = bench_plan.Row("onnxruntime", "fp16", "")
    with pytest.raises(ConfigError, match="m_fp16.onnx was made from another FP32 graph than"):
        bench_plan.onnx_variant(str(tmp_path / "m.onnx"), row, (128, 256))


@pytest.mark.host
def test_concurrent_int8_benchmarks_share_one_work_dir(tmp_path):
    command = [sys.executable, "-m", "fanet.cli.device.bench", "--work-dir", str(tmp_path)]
    command += ["--res", "64x128", "--backend", "onnxruntime", "--precision", "int8", *FAST]
    processes = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True
        )
        for _ in range(2)
    ]
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0 and "Traceback" not in stderr, stderr
        assert "onnxruntime int8" in stdout
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if n.endswith((".part", ".lock")) or n.startswith(".")], names
    assert len(list((tmp_path / "synthetic_64x128").rglob("*_leftImg8bit.png"))) == 16


@pytest.mark.host
def test_temporal_rows_report_per_frame_time(tmp_path, capsys):
    """Random weights exported on the fly per window; the state carried frame to frame."""
    args = ["--res", "64x128", "--backend", "onnxruntime", "--work-dir", str(tmp_path), *FAST]
    assert bench.main([*args, "--temporal", "1", "--temporal", "2"]) == 0
    table = capsys.readouterr().out
    assert "onnxruntime fp32 t=1" in table and "onnxruntime fp32 t=2" in table
    assert "Per frame, the attention state carried from frame to frame (Table VIII):" in table
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == [
        "random-fanet18_64x128.onnx",
        "random-fanet18_64x128_t2.onnx",
    ]
    assert bench.main([*args, "--temporal", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    jsonschema.validate(report, SCHEMA)
    (entry,) = report["results"]
    assert entry["temporal"] == 2 and entry["stats"]["host"]["iterations"] == 3


@pytest.mark.parametrize(
    "extra, expected, message",
    [
        ([], 1, "is temporal (2 frames): pass --temporal 2 to run it on frames in turn"),
        (["--temporal", "3"], 1, "attends to 2 frames, not 3: export it with --temporal 3"),
        (["--temporal", "0"], 2, "the temporal window must be a whole number of frames >= 1"),
    ],
)
def test_a_temporal_graph_needs_its_window(temporal_export, extra, expected, message):
    args = ["--onnx", str(temporal_export), "--res", "64x128", "--backend", "onnxruntime"]
    code, _, stderr = _run(*args, *FAST, *extra)
    assert code == expected and message in stderr and "Traceback" not in stderr


def test_data_adds_each_rows_miou(exported_trained, synthetic_cityscapes, capsys):
    args = ["--onnx", str(exported_trained), "--res", "128x256", "--backend", "onnxruntime"]
    args += ["--data", str(synthetic_cityscapes), "--data-limit", "4", *FAST]
    assert bench.main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    jsonschema.validate(report, SCHEMA)
    assert 0.6 < report["results"][0]["miou"] <= 1
    assert bench.main(args) == 0
    header, _, row = capsys.readouterr().out.splitlines()[:3]
    assert header.split()[-2:] == ["mIoU", "128x256"]
    assert float(row.split()[-1]) == pytest.approx(100 * report["results"][0]["miou"], abs=0.01)


def test_a_read_only_plot_is_refused_before_measuring_unless_forced(
    exported_trained, tmp_path, capsys
):
    plot = tmp_path / "fps.png"
    plot.write_bytes(b"mine")
    plot.chmod(0o444)
    args = ["--onnx", str(exported_trained), "--res", "128x256", "--backend", "onnxruntime"]
    args += [*FAST, "--plot", str(plot)]
    assert bench.main(args) == 1
    assert capsys.readouterr().err.endswith("is read-only: pass --force to replace it\n")
    assert plot.read_bytes() == b"mine"
    assert bench.main([*args, "--force"]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_lone_fixed_size_graph_is_measured_at_its_own_size_and_named(
    exported_trained, tmp_path, capsys
):
    """No --res: the graph's own 128x256, not 512x1024; the table and JSON name the file."""
    args = ["--onnx", str(exported_trained), "--backend", "onnxruntime", *FAST]
    assert bench.main([*args, "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["results"]
    assert entry["resolution"] == "128x256" and entry["model"] == str(exported_trained)
    assert bench.main(args) == 0
    table = capsys.readouterr().out
    assert f"Models measured:\n  onnxruntime fp32: {exported_trained}\n" in table
    assert bench.main([*args, "--csv"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert header.endswith(",model,note,int8_budget,float_groups")
    assert row.endswith("," + str(exported_trained) + ",,,")


@pytest.mark.parametrize(
    "option,name,words",
    [
        ("--onnx", "nothere.onnx", "--onnx nothere.onnx: no such file"),
        ("--onnx", "folder", "--onnx folder: a folder, not a model file"),
        ("--onnx", "drive.mp4", "--onnx drive.mp4: not an ONNX graph (.onnx)"),
        ("--engine", "nothere.engine", "--engine nothere.engine: no such file"),
        ("--weights", "folder", "--weights folder: a folder, not a model file"),
    ],
)
def test_a_wrong_model_file_is_named_for_what_it_is(tmp_path, option, name, words):
    (tmp_path / "folder").mkdir()
    (tmp_path / "drive.mp4").write_bytes(b"not a graph")
    code, _, stderr = _run(option, name, *FAST, cwd=tmp_path)
    assert code == 1
    assert stderr.strip().splitlines()[-1] == f"fanet-trt-bench: error: {words}"


def test_in_an_export_folder_the_export_is_measured_at_its_own_size(exported_trained, tmp_path):
    for path in exported_trained.parent.iterdir():
        if path.is_file():
            (tmp_path / path.name).write_bytes(path.read_bytes())
    code, stdout, stderr = _run("--backend", "onnxruntime", "--json", *FAST, cwd=tmp_path)
    assert code == 0, stderr
    (entry,) = json.loads(stdout)["results"]
    assert entry["resolution"] == "128x256" and entry["model"].endswith(exported_trained.name)
