"""fanet-export's artefact sets as transactions, with real processes, signals and disks.

Each export here is a real ``python -m fanet.cli.host.export`` process at 64x128 with
random weights (about 3 s for FP32, 7 s with INT8 on two cores).
"""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fanet.core.synthetic import write_cityscapes

from support.small_disk import small_disk_available

EXPORT = [sys.executable, "-m", "fanet.cli.host.export", "--random-weights", "--res", "64x128"]
TRIALS = 10


@pytest.fixture(scope="module")
def calibration(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("calibration")
    write_cityscapes(str(root), "train", 2, size=(64, 128))
    return str(root)


def _command(out, seed=0, int8=None, *extra):
    command = [*EXPORT, "-o", str(out), "--seed", str(seed), "-q", *extra]
    if int8:
        command += ["--int8", "--calib-data", int8, "--calib-count", "2"]
    return command


def _start(command, temporary):
    environment = dict(os.environ, TMPDIR=str(temporary))
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    )


def _finish(process, timeout=300):
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def consistent_set(folder: Path) -> set:
    """Assert that ``folder`` holds one consistent export set; return its variants."""
    names = sorted(p.name for p in folder.iterdir())
    assert not [n for n in names if n.endswith((".part", ".lock"))], names
    fp32 = _sha256(folder / "fanet18_64x128.onnx")
    variants = set()
    for graph in folder.glob("*.onnx"):
        sidecar = json.loads(graph.with_suffix(".json").read_text())
        assert sidecar["onnx_sha256"] == _sha256(graph), graph.name
        assert sidecar["fp32_sha256"] == fp32, f"{graph.name} was made from another FP32 graph"
        variants.add(sidecar["precision"])
    cache = folder / "fanet18_64x128_int8.calib.json"
    assert ("int8" in variants) == cache.exists()
    if cache.exists():
        assert json.loads(cache.read_text())["fingerprint"]["onnx_sha256"] == fp32
        assert (folder / "fanet18_64x128_int8.calib.cache").exists()
    return variants


def _left_in(temporary: Path) -> list:
    """What runs left in the temporary folder."""
    return sorted(p.name for p in temporary.iterdir())


def _snapshot(folder: Path) -> dict:
    """Each file's name and content hash."""
    return {p.name: _sha256(p) for p in folder.iterdir()}


def test_concurrent_exports_of_two_models_end_with_one_consistent_set(tmp_path, calibration):
    out, temporary = tmp_path / "out", tmp_path / "tmp"
    temporary.mkdir()
    for trial in range(TRIALS):
        int8_seed, fp32_seed = (1, 2) if trial % 2 else (2, 1)
        stagger = [0.0, 0.0, 0.5, 1.0, 2.0][trial % 5]
        first, second = (
            (_command(out, int8_seed, calibration), _command(out, fp32_seed))
            if trial < TRIALS // 2
            else (_command(out, fp32_seed), _command(out, int8_seed, calibration))
        )
        started = _start(first, temporary)
        time.sleep(stagger)
        results = [_finish(p) for p in (_start(second, temporary), started)]
        for code, _, stderr in results:
            assert code == 0 and "Traceback" not in stderr, (trial, stderr)
        consistent_set(out)
        assert _left_in(temporary) == []


def test_identical_concurrent_exports_both_succeed(tmp_path, calibration):
    out = tmp_path / "out"
    processes = [_start(_command(out, 0, calibration), tmp_path) for _ in range(2)]
    for code, _, stderr in [_finish(p) for p in processes]:
        assert code == 0 and "Traceback" not in stderr, stderr
    assert consistent_set(out) == {"fp32", "int8"}


def test_a_signal_at_any_moment_leaves_the_previous_set_and_no_new_file(tmp_path, calibration):
    out, temporary = tmp_path / "out", tmp_path / "tmp"
    temporary.mkdir()
    started = time.monotonic()
    assert _finish(_start(_command(out, 5), temporary))[0] == 0  # the previous set
    fp32_seconds = time.monotonic() - started
    before = _snapshot(out)
    durations = []
    for _ in range(2):  # the fastest of two: a warm run, as the interrupted ones are
        started = time.monotonic()
        timing = _start(_command(tmp_path / "timing", 6, calibration), temporary)
        assert _finish(timing)[0] == 0
        durations.append(time.monotonic() - started)
    last = min(durations) * 0.75  # before the fastest run could have finished, with room
    # while torch imports, then spread over the export up to the Q/DQ graphs
    moments = [0.3] + [fp32_seconds * 0.4 + k * (last - fp32_seconds * 0.4) / 8 for k in range(9)]
    for moment in moments:
        for sent, expected, word in (
            (signal.SIGINT, 130, "interrupted"),
            (signal.SIGTERM, 143, "terminated"),
        ):
            code, stderr = _interrupted_export(out, calibration, temporary, moment, sent)
            assert (code, stderr.strip().splitlines()[-1:]) == (
                expected,
                [f"fanet-export: {word}"],
            ), (moment, sent, stderr)
            assert "Traceback" not in stderr
            assert _snapshot(out) == before, (moment, sent)
            assert _left_in(temporary) == [], (moment, sent)
    code, _, stderr = _finish(_start(_command(out, 6, calibration), temporary))
    assert code == 0, stderr
    assert consistent_set(out) == {"fp32", "int8"}


def _interrupted_export(out, calibration, temporary, moment, sent):
    """An INT8 export sent ``sent`` after ``moment`` seconds. On a busy machine a run can
    end before its moment; then the previous set is written again and the signal is sent
    earlier, up to three times (a finished run is not what this test is about)."""
    for _ in range(3):
        process = _start(_command(out, 6, calibration), temporary)
        time.sleep(moment)
        process.send_signal(sent)
        code, stdout, stderr = _finish(process)
        if "argmax agreement" not in stdout:  # the results table: the run had finished
            return code, stderr
        assert _finish(_start(_command(out, 5), temporary))[0] == 0  # byte for byte
        moment *= 0.7
    raise AssertionError(f"every run finished before its signal ({moment:.2f} s)")


def test_a_failed_re_export_keeps_the_previous_set(tmp_path, calibration):
    out = tmp_path / "out"
    assert _finish(_start(_command(out, 0, calibration), tmp_path))[0] == 0
    before = _snapshot(out)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("a.png", "b.png"):
        (broken / name).write_bytes(b"not a png")  # no crop can be made of these
    code, _, stderr = _finish(_start(_command(out, 1, str(broken)), tmp_path))
    assert code == 1 and "crops could be made: 2 of 2 images are unreadable" in stderr
    assert _snapshot(out) == before
    assert consistent_set(out) == {"fp32", "int8"}


def test_an_fp32_export_of_another_model_retires_the_old_int8_graphs(tmp_path, calibration):
    out = tmp_path / "out"
    assert _finish(_start(_command(out, 0, calibration), tmp_path))[0] == 0
    assert _finish(_start(_command(out, 0), tmp_path))[0] == 0  # same model: INT8 stays
    assert consistent_set(out) == {"fp32", "int8"}
    code, _, stderr = _finish(_start(_command(out, 1)[:-1], tmp_path))  # without -q
    assert code == 0 and "it belonged to the previous export" in stderr
    assert consistent_set(out) == {"fp32"}


def test_read_only_files_are_refused_unless_forced(tmp_path):
    out = tmp_path / "out"
    assert _finish(_start(_command(out, 0), tmp_path))[0] == 0
    (out / "fanet18_64x128.onnx").chmod(0o444)
    before = _snapshot(out)
    code, _, stderr = _finish(_start(_command(out, 1), tmp_path))
    assert code == 1 and stderr.strip().splitlines()[-1] == (
        f"fanet-export: error: {out / 'fanet18_64x128.onnx'} is read-only: "
        "pass --force to replace it"
    )
    assert _snapshot(out) == before
    assert _finish(_start(_command(out, 1, None, "--force"), tmp_path))[0] == 0
    consistent_set(out)


@pytest.mark.skipif(not small_disk_available(), reason="cannot mount a small tmpfs here")
@pytest.mark.parametrize("full", ["output", "temporary"])
def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, calibration, full):
    """A 40 MB tmpfs (the FP32 graph alone is 52 MB) as the output or TMPDIR folder:
    the graph's write fails, or the calibration's scratch room is refused up front."""
    out, temporary = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    temporary.mkdir()
    small = out if full == "output" else temporary
    export = " ".join(_command(out, 0, calibration))
    script = (
        f"mount -t tmpfs -o size=40m none {small} && TMPDIR={temporary} {export}; "
        f"echo exit=$?; ls -A {out} {temporary}"
    )
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("fanet-export: error: ") and str(small) in last, result.stderr
    assert re.search(r"\d+\.\d MB free", last)
    listing = result.stdout.split("exit=")[1].split()
    assert [name for name in listing if name != ".ses"] == ["1", f"{out}:", f"{temporary}:"]
