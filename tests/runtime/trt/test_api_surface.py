"""The TensorRT code against the real API of every version it claims (8.2 to 11.4).

For each version's stand-in (its manifest's names only), the builder builds every
precision the version's plan allows (timing cache, DLA, a dynamic profile, a temporal
state, implicit INT8 where calibrators exist) and the backend runs each engine (CUDA
graphs, device timing, the state carried). Every TensorRT name used is recorded; each must
be in that version's manifest, and every use read from the source must be reached by some
version's branch.
"""

import glob
import os

import numpy as np
import pytest

from fanet.core.engine_record import EngineError
from fanet.core.sidecar import read_sidecar
from fanet.runtime.options import BuildOptions

from support.artefacts import fp32_graph, host_artefact
from support.cuda_standins import CountingCuda, SimulatedCuda
from support.tensorrt_standin import VERSIONS, Recorder, install_standin, manifest_for
from support.tensorrt_uses import MODULE, tensorrt_uses

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
TRT_SOURCES = sorted(glob.glob(os.path.join(ROOT, "fanet", "runtime", "trt", "*.py")))
STRONGLY_TYPED_ONLY = (11,)


def _major_minor(version):
    return tuple(int(part) for part in version.split(".")[:2])


def _names(manifest):
    """Every (owner, member) a manifest has, module names as ("tensorrt", name)."""
    names = {(MODULE, name) for name in list(manifest["module"]) + list(manifest["classes"])}
    for owner, spec in manifest["classes"].items():
        names |= {(owner, member) for member in spec["members"]}
    return names


def _exercise(version, tmp_path):
    """Build and run everything on ``version``'s stand-in; the TensorRT names it used."""
    recorder, faults = Recorder(), {}
    cuda = CountingCuda(SimulatedCuda())
    with pytest.MonkeyPatch.context() as patch:
        install_standin(patch, version, cuda, recorder, dla_cores=1, faults=faults)
        from fanet.runtime.trt import backend, builder

        patch.setattr(builder, "load_cuda_api", lambda: cuda)
        export = str(fp32_graph(host_artefact("export_set")))
        cache = str(tmp_path / "timing.cache")
        builds = [
            ("fp32", export, BuildOptions(dla_core=0, workspace_mib=64)),
            ("fp16", export, BuildOptions(timing_cache=cache)),
            ("int8", export, BuildOptions(timing_cache=cache)),
            ("fp32", str(fp32_graph(host_artefact("temporal"))), BuildOptions()),
            ("fp32", str(fp32_graph(host_artefact("dynamic_export"))), _profile()),
        ]
        if _major_minor(version) < STRONGLY_TYPED_ONLY:
            builds.append(("int8", export, BuildOptions(implicit_int8=True)))
        for index, (precision, onnx, options) in enumerate(builds):
            engine = str(tmp_path / "{}_{}.engine".format(index, precision))
            builder.build_engine(onnx, precision, engine, options)
            _run(backend, engine, cuda, onnx)
        faults["parse"] = "In node 3 (importConv): UNSUPPORTED_NODE"
        with pytest.raises(EngineError, match="cannot parse .*: In node 3 .*UNSUPPORTED_NODE"):
            builder.build_engine(export, "fp32", str(tmp_path / "never.engine"))
    assert cuda.live_handles() == {} and not (tmp_path / "never.engine").exists()
    return recorder.uses


def _profile():
    return BuildOptions(profile=((32, 64), (64, 128), (128, 256)))


def _run(backend, engine, cuda, onnx):
    sidecar = read_sidecar(onnx)
    size = sidecar.input_size or (64, 128)
    feed = {"input": np.ones((1, 3) + tuple(size), np.float32)}
    with backend.TensorRTBackend(engine, cuda=cuda, cuda_graph=True) as opened:
        if sidecar.state:
            opened.bind_state(sidecar.state)
        for _ in range(2):
            outputs = opened.infer(feed)
            np.testing.assert_array_equal(outputs["logits"], feed["input"] * 2)
        assert opened.compute_ms(feed) >= 0


@pytest.fixture(scope="module")
def used(tmp_path_factory):
    """The TensorRT names each version's run used."""
    return {
        version: _exercise(version, tmp_path_factory.mktemp("v" + version)) for version in VERSIONS
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_each_version_uses_only_names_it_has(used, version):
    manifest = manifest_for(version)
    missing = sorted(used[version] - _names(manifest))
    assert not missing, "TensorRT {} ({}) lacks {}".format(version, manifest["version"], missing)
    print("TensorRT {}: {} names used".format(version, len(used[version])))


def test_every_use_in_the_source_is_reached_by_some_version(used):
    manifests = [manifest_for(version) for version in VERSIONS]
    written = tensorrt_uses(TRT_SOURCES, manifests)
    reached = set().union(*used.values())
    assert len(written) > 70
    assert written <= reached, sorted(written - reached)
    table = {use: [v for v in VERSIONS if use in used[v]] for use in sorted(written)}
    print("{} uses; those not made on every version:".format(len(written)))
    for use, versions in table.items():
        if versions != VERSIONS:
            print("  {:45} {}".format(".".join(use), " ".join(versions)))
    assert table[("IExecutionContext", "execute_async_v2")] == ["8.2.1", "8.4.1.5"]
    assert table[(MODULE, "IInt8EntropyCalibrator2")] == VERSIONS[:-2]  # none in 11.x
