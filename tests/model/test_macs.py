"""Multiply-accumulates against the figures of FANET_SPEC.md."""

import pytest

from fanet.core.errors import ConfigError
from fanet.model import count_macs, count_parameters, create_model


@pytest.mark.parametrize(
    "arch,size,gmac",
    [
        ("fanet18", (512, 1024), 11.854),
        ("fanet18", (1024, 2048), 47.393),
        ("fanet34", (512, 1024), 16.69),
        ("fanet34", (1024, 2048), 66.72),
    ],
)
def test_macs_of_the_released_network(arch, size, gmac):
    assert count_macs(create_model(arch), size) / 1e9 == pytest.approx(gmac, abs=5e-3)


def test_deployed_graph_skips_the_discarded_smooth_branch():
    model = create_model("fanet18")
    difference = count_macs(model, (1024, 2048)) - count_macs(model, (1024, 2048), False)
    assert difference == (1024 // 64) * (2048 // 64) * 512 * 128 * 3 * 3  # fam_32.smooth


@pytest.mark.parametrize("arch,parameters", [("fanet18", 13_820_032), ("fanet34", 23_928_192)])
def test_parameter_counts_match_the_manifests(arch, parameters):
    assert count_parameters(create_model(arch)) == parameters


def test_bad_size_is_rejected():
    with pytest.raises(ConfigError):
        count_macs(create_model("fanet18"), (0, 64))
