"""fanet-info end to end: figures, JSON, and bad input as one line + non-zero exit."""

import json
import subprocess
import sys

import pytest
import torch

from fanet.cli.host.info import main
from fanet.model import create_model


def test_prints_paper_gmac_at_full_resolution(capsys):
    assert main(["--arch", "fanet18", "--res", "1024x2048"]) == 0
    out = capsys.readouterr().out
    assert "13,820,032 parameters" in out
    assert "47.39" in out


def test_table_i_prints_ours_beside_the_paper(capsys):
    assert main(["--table-i", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    fast_1024 = next(r for r in rows if r["kind"] == "fast" and r["channels"] == 1024)
    assert fast_1024["paper_gmac"] == 73
    assert fast_1024["gmac"] == pytest.approx(73.01, abs=0.01)
    assert len(rows) == 12


def test_arch_and_classes_come_from_the_checkpoint(tmp_path, capsys):
    path = tmp_path / "fanet34.pth"
    torch.save({"model_state": create_model("fanet34", num_classes=21).state_dict()}, path)
    assert main(["--weights", str(path), "--res", "512x1024", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["arch"], report["num_classes"]) == ("fanet34", 21)
    assert report["resolutions"][0]["gmac"] == pytest.approx(16.69, abs=0.01)


def _write(path, payload):
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        torch.save(payload, path)
    return path


@pytest.mark.parametrize(
    "name,payload,extra,message",
    [
        ("missing.pth", None, [], "not found"),
        ("cs", "folder", [], "cs is a folder, not a checkpoint file"),
        ("text.pth", b"hello\n", [], "cannot read checkpoint"),
        ("other.pth", {"conv.weight": torch.zeros(1)}, [], "not a FANet checkpoint"),
        ("c21.pth", "c21", ["--num-classes", "19"], "21 classes but the model has 19"),
    ],
)
def test_bad_checkpoints_give_one_line_and_exit_1(tmp_path, name, payload, extra, message):
    path = tmp_path / name
    if payload == "c21":
        _write(path, create_model("fanet18", num_classes=21).state_dict())
    elif payload == "folder":
        path.mkdir()
    elif payload is not None:
        _write(path, payload)
    result = subprocess.run(
        [sys.executable, "-m", "fanet.cli.host.info", "--weights", str(path), *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("fanet-info: error:") and message in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("res", ["0x512", "-1x5", "abc", "9000x9000", "512"])
def test_bad_resolution_is_a_usage_error(res, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([f"--res={res}"])
    assert exit_info.value.code == 2
    assert "resolution" in capsys.readouterr().err
