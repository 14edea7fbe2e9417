"""fanet-export end to end: files, sidecars, and bad input (one line, exit 1, no files)."""

import json
import subprocess
import sys

import pytest
import torch

from fanet.cli.host.export import main
from fanet.core.onnx_graph import read_metadata_props
from fanet.model import create_model


def _run(*args):
    result = subprocess.run(
        [sys.executable, "-m", "fanet.cli.host.export", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


def _int8_args(calibration, out, *extra):
    """An INT8 export of random weights at 64x128, calibrated on ``calibration``."""
    common = ["--random-weights", "--res", "64x128", "--int8", "--calib-data", str(calibration)]
    return [*common, *extra, "-o", str(out)]


def _files(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_export_fp32_and_fp16_with_sidecars(tmp_path, capsys):
    weights = tmp_path / "fanet18.pth"
    torch.save({"model_state": create_model("fanet18", num_classes=7).state_dict()}, weights)
    out = tmp_path / "out"
    assert (
        main(
            [
                "--weights",
                str(weights),
                "--res",
                "64x128",
                "--fp16",
                "-o",
                str(out),
                "--opset",
                "13",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "fp32" in table and "fp16" in table
    assert _files(out) == [
        "fanet18_64x128.json",
        "fanet18_64x128.onnx",
        "fanet18_64x128_fp16.json",
        "fanet18_64x128_fp16.onnx",
    ]
    sidecar = json.loads((out / "fanet18_64x128_fp16.json").read_text())
    assert sidecar["num_classes"] == 7 and sidecar["input_size"] == [64, 128]
    assert sidecar["opset"] == 13 and sidecar["precision"] == "fp16"
    assert sidecar["random_weights"] is False and sidecar["agreement"]["finite"] == 1.0
    for variant, precision in (("", "fp32"), ("_fp16", "fp16")):
        props = read_metadata_props(str(out / f"fanet18_64x128{variant}.onnx"))
        assert json.loads(props["fanet.precision"]) == precision
        assert json.loads(props["fanet.input_size"]) == [64, 128]
        assert json.loads(props["fanet.mean"]) == sidecar["mean"]
        assert json.loads(props["fanet.num_classes"]) == 7


def test_random_weights_are_recorded(tmp_path):
    code, _, err = _run("--random-weights", "--res", "64x64", "--dynamic", "-o", str(tmp_path))
    assert code == 2 and "not allowed with argument" in err  # --res and --dynamic exclude
    code, _, err = _run("--random-weights", "--dynamic", "-o", str(tmp_path), "--json")
    assert code == 0 and "RANDOM weights" in err and "fanet-build" in err
    sidecar = json.loads((tmp_path / "fanet18_dynamic.json").read_text())
    assert sidecar["random_weights"] is True and sidecar["dynamic"] is True


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "no --weights given"),
        (["--weights", "missing.pth"], "checkpoint not found"),
        (["--random-weights", "--int8"], "--int8 needs --calib-data"),
        (["--random-weights", "--int8", "--calib-data", "EMPTY"], "no images"),
        (["--random-weights", "--fp16-io"], "--fp16-io needs --fp16"),
        (["--random-weights", "-o", "FILE/sub"], "cannot create output folder"),
        (["--random-weights", "--name", "../escape"], "--name must be a plain name"),
        (["--random-weights", "--name", ".."], "--name must be a plain name"),
        (["--random-weights", "--name", "it's"], "--name must be a plain name"),
        (["--random-weights", "--name", "x" * 201], "--name is 201 characters long"),
    ],
)
def test_bad_input_gives_one_line_and_no_files(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("x")
    args = [
        a.replace("EMPTY", str(tmp_path / "empty")).replace("FILE", str(tmp_path / "afile"))
        for a in args
    ]
    out = tmp_path / "out"
    code, stdout, stderr = _run(
        *args, "--res", "64x64", *([] if "-o" in args else ["-o", str(out)])
    )
    assert code == 1, stderr
    lines = [line for line in stderr.splitlines() if not line.startswith("WARNING")]
    assert lines == [lines[0]] and message in lines[0] and "Traceback" not in stderr
    assert not out.exists() or _files(out) == []


def test_a_temporal_window_of_zero_is_a_usage_error(tmp_path):
    code, _, stderr = _run("--random-weights", "--temporal", "0", "-o", str(tmp_path / "out"))
    assert code == 2 and "Traceback" not in stderr
    assert "the temporal window must be a whole number of frames >= 1, got 0" in stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("res", ["0x512", "-5x5", "axb", "9000x100", "512x"])
def test_absurd_resolutions_are_usage_errors(res):
    code, _, stderr = _run("--random-weights", f"--res={res}")
    assert code == 2 and "resolution" in stderr and "Traceback" not in stderr


def test_unreadable_weights(tmp_path):
    weights = tmp_path / "fanet18.pth"
    weights.write_bytes(b"\x00" * 100)
    code, _, stderr = _run("--weights", str(weights), "-o", str(tmp_path / "out"))
    assert code == 1 and "cannot read checkpoint" in stderr


def test_images_smaller_than_the_crop_are_enlarged_counted_and_recorded(tmp_path):
    """A 32x64 photo among the calibration images no longer aborts a 64x128 export."""
    from fanet.core.synthetic import write_cityscapes

    write_cityscapes(str(tmp_path / "cs"), "train", 2, size=(32, 64))
    code, _, stderr = _run(*_int8_args(tmp_path / "cs", tmp_path / "out", "--calib-count", "2"))
    assert code == 0, stderr
    assert "2 images smaller than the 64x128 crop were enlarged to it" in stderr
    sidecar = json.loads((tmp_path / "out" / "fanet18_64x128_int8.json").read_text())
    assert sidecar["calibration"]["enlarged_images"] == 2


def test_interruption_leaves_no_partial_files(tmp_path, monkeypatch, capsys):
    from fanet.core.synthetic import write_cityscapes
    from fanet.export import recipes

    write_cityscapes(str(tmp_path / "cs"), "train", 2, size=(64, 128))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(recipes, "calibrate_ranges", interrupted)
    out = tmp_path / "out"
    code = main(_int8_args(tmp_path / "cs", out, "--calib-count", "2"))
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert list(out.iterdir()) == []  # not even the FP32 graph: the set is one transaction


def test_a_triton_repo_that_is_not_a_repository_is_refused_before_the_export(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "todo.txt").write_text("mine")
    args = ["--random-weights", "--res", "32x64", "-o", str(tmp_path / "out")]
    args += ["--triton-repo", str(folder)]
    code, _, stderr = _run(*args)
    assert code == 1 and "Traceback" not in stderr
    assert "is not empty and not a Triton model repository (todo.txt has no config.pbtxt)" in stderr
    assert not (tmp_path / "out").exists()  # refused before the export
    assert main([*args, "--force", "-q"]) == 0
    assert (folder / "fanet18_32x64" / "config.pbtxt").is_file()
    assert (folder / "todo.txt").read_text() == "mine"


def test_a_model_whose_outputs_overflow_is_not_exported(tmp_path):
    """Finite weights that overflow float32 on the way give Inf/NaN logits: the verification
    figures are not numbers, and nothing is written (the sidecar would hold NaN tokens)."""
    state = create_model("fanet18").state_dict()
    state["clslayer.conv_out.weight"].fill_(3e38)
    torch.save(state, tmp_path / "overflowing.pth")
    out = tmp_path / "out"
    code, _, stderr = _run(
        "--weights", str(tmp_path / "overflowing.pth"), "--res", "64x64", "-o", str(out)
    )
    assert code == 1 and "Traceback" not in stderr
    assert "gives outputs that are not finite numbers on the verification inputs" in stderr
    assert not out.exists() or _files(out) == []


def test_nan_weights_are_refused_before_anything_is_written(tmp_path):
    state = create_model("fanet18").state_dict()
    state["resnet.bn1.running_var"][3] = float("nan")
    torch.save(state, tmp_path / "diverged.pth")
    out = tmp_path / "out"
    code, _, stderr = _run("--weights", str(tmp_path / "diverged.pth"), "-o", str(out))
    assert code == 1 and stderr.count("\n") == 1, stderr
    assert "NaN or infinite values in 1 tensors: resnet.bn1.running_var (1 of 64)" in stderr
    assert not out.exists() or _files(out) == []
