"""Fast attention: associativity of the cosine affinity, linear vs quadratic cost, Table I."""

import pytest
import torch
import torch.nn.functional as F

from fanet.core.errors import ConfigError
from fanet.model import PAPER_TABLE_I, FastAttention, SelfAttention, attention_macs


def test_right_to_left_product_equals_left_to_right():
    torch.manual_seed(0)
    n, key_channels, channels = 500, 32, 64
    q = F.normalize(torch.randn(1, n, key_channels, dtype=torch.float64), dim=-1)
    k = F.normalize(torch.randn(1, key_channels, n, dtype=torch.float64), dim=1)
    v = torch.randn(1, n, channels, dtype=torch.float64)
    fast = q @ (k @ v)
    naive = (q @ k) @ v  # n x n cosine affinity first
    torch.testing.assert_close(fast, naive, rtol=1e-12, atol=1e-12)


def test_module_computes_the_cosine_affinity_product():
    torch.manual_seed(0)
    module = FastAttention(16).eval()
    x = torch.randn(1, 16, 6, 7)
    with torch.no_grad():
        q = F.normalize(module.w_qs(x), dim=1).flatten(2).transpose(1, 2)
        k = F.normalize(module.w_ks(x), dim=1).flatten(2)
        v = module.w_vs(x).flatten(2).transpose(1, 2)
        expected = module.latlayer3(((q @ k) @ v).transpose(1, 2).reshape(x.shape))
        torch.testing.assert_close(module(x), expected, rtol=1e-5, atol=1e-6)


def test_self_attention_has_the_same_interface():
    x = torch.randn(2, 32, 5, 9)
    with torch.no_grad():
        assert SelfAttention(32).eval()(x).shape == FastAttention(32).eval()(x).shape == x.shape


@pytest.mark.parametrize("channels", [64, 256])
def test_fast_cost_is_linear_and_self_cost_quadratic_in_pixels(channels):
    small = {kind: attention_macs(kind, channels, 32, 64) for kind in ("fast", "self")}
    large = {kind: attention_macs(kind, channels, 64, 128) for kind in ("fast", "self")}
    assert large["fast"] == 4 * small["fast"]  # 4x the pixels: exactly 4x the MACs
    n_small, n_large = 32 * 64, 64 * 128
    quadratic_small = n_small * n_small * (32 + channels)
    quadratic_large = n_large * n_large * (32 + channels)
    assert large["self"] - 4 * small["self"] == quadratic_large - 4 * quadratic_small


@pytest.mark.parametrize("channels", sorted(PAPER_TABLE_I["self"]))
def test_self_attention_reproduces_table_i(channels):
    # The paper's figures sit 0.1-1.3 % below a count of convolutions and matmuls
    # (68.85 vs 68 at C=32); fanet-info --table-i prints the differences.
    ours = attention_macs("self", channels, 128, 256) / 1e9
    assert ours == pytest.approx(PAPER_TABLE_I["self"][channels], rel=0.015)


@pytest.mark.parametrize("channels", sorted(PAPER_TABLE_I["fast"]))
def test_fast_attention_reproduces_table_i(channels):
    ours = attention_macs("fast", channels, 128, 256) / 1e9
    paper = PAPER_TABLE_I["fast"][channels]
    if channels in (64, 128):  # the paper is 0.06-0.09 GMAC higher here; we report it
        assert 0.05 <= paper - ours <= 0.1
    else:
        assert round(ours, 1 if paper < 1 else 0) == paper


def test_unknown_attention_kind_is_rejected():
    with pytest.raises(ConfigError, match="fast, self"):
        attention_macs("linear", 32, 8, 8)
