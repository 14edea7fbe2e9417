"""Benchmark exports: made once per checkpoint and size, made again by a newer fanet."""

import json
from pathlib import Path

from fanet import __version__
from fanet.bench.plan import BenchRequest
from fanet.core.sidecar import sidecar_path
from fanet.export.bench_artefacts import bench_onnx


def _export(work_dir: Path) -> Path:
    return Path(bench_onnx(BenchRequest(arch="fanet18", work_dir=str(work_dir)), (64, 128), "fp32"))


def test_export_is_reused_until_fanet_changes(tmp_path, caplog):
    path = _export(tmp_path)
    sidecar = Path(sidecar_path(str(path)))
    written = path.stat().st_mtime_ns
    with caplog.at_level("INFO"):
        assert _export(tmp_path) == path and path.stat().st_mtime_ns == written
    assert f"reusing {path}, exported by an earlier benchmark (--work-dir)" in caplog.text

    record = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**record, "fanet_version": "0.0.1"}))
    assert _export(tmp_path) == path and path.stat().st_mtime_ns != written
    assert json.loads(sidecar.read_text())["fanet_version"] == __version__
