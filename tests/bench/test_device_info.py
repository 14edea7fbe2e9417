"""What the benchmark says about the processor: its vector extensions, read from
/proc/cpuinfo, and the note an INT8 row gets where they do not make INT8 pay (Python 3.6
compatible)."""

from fanet.bench.device_info import cpu_isa, int8_gains_little
from fanet.bench.plan import INT8_ON_PLAIN_CPU, Row, row_note

ZEN3 = "fpu sse2 avx avx2 fma bmi2 sha_ni"  # AVX2 only
SAPPHIRE_RAPIDS = "avx2 avx512f avx512_vnni avx_vnni amx_bf16 amx_tile amx_int8"


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nmodel name\t: CPU\nflags\t\t: {}\n\n".format(flags))
    return str(path)


def test_the_extensions_are_read_from_cpuinfo(tmp_path):
    assert cpu_isa(_cpuinfo(tmp_path, ZEN3)) == {
        "avx2": True, "avx512f": False, "avx512_vnni": False, "avx_vnni": False, "amx": False
    }  # fmt: skip
    assert all(cpu_isa(_cpuinfo(tmp_path, SAPPHIRE_RAPIDS)).values())
    assert not any(cpu_isa(str(tmp_path / "missing")).values())


def test_an_int8_row_on_a_cpu_without_vnni_or_amx_carries_a_note(tmp_path):
    plain = {"cpu_isa": cpu_isa(_cpuinfo(tmp_path, ZEN3))}
    vnni = {"cpu_isa": cpu_isa(_cpuinfo(tmp_path, "avx2 avx512f avx512_vnni"))}
    assert int8_gains_little(plain["cpu_isa"]) and not int8_gains_little(vnni["cpu_isa"])
    assert row_note(Row("openvino", "int8", ""), plain) == INT8_ON_PLAIN_CPU
    assert row_note(Row("onnxruntime", "int8", ""), plain) == INT8_ON_PLAIN_CPU
    assert row_note(Row("onnxruntime", "fp32", ""), plain) == ""
    assert row_note(Row("onnxruntime", "int8", ""), vnni) == ""
    assert row_note(Row("tensorrt", "int8", ""), plain) == ""
    on_gpu = dict(plain, gpu="NVIDIA H100")
    assert row_note(Row("onnxruntime", "int8", ""), on_gpu) == ""
    assert row_note(Row("onnxruntime", "int8", ""), on_gpu, "cpu") == INT8_ON_PLAIN_CPU
