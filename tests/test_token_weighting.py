"""Token weights against a float64 reference written here from docs/method.md §2, plus invariances."""

import math

import pytest
import torch

from twgrpo_lib.core.token_weighting import (
    batched_token_weights,
    batched_token_weights_from_hidden_states,
    group_divergence,
    member_divergence,
    token_weights,
    token_weights_from_hidden_states,
    top_entropy_mask,
)


def reference_weights(logits, mask, alpha=1.7, temperature=1.0):
    """The definition, literally, in float64 over the full (G, T, V) tensor."""
    x = logits.double() / temperature
    G, T_pad, V = x.shape
    m = mask.bool()
    ends = [t for t in range(T_pad) if m[:, t].any()]
    T = ends[-1] + 1 if ends else 0
    logp = torch.log_softmax(x, -1)
    logp = torch.where(m[..., None], logp, torch.full_like(logp, -math.log(V)))
    mu = logp.mean(0, keepdim=True)
    d = (mu - logp).clamp(-11, 11)
    D = (torch.exp(d) - d - 1).sum(-1).mean(0)  # (T_pad,)
    w = torch.zeros(G, T_pad, dtype=torch.float64)
    if T:
        n = (D[:T] - D[:T].min()) / (D[:T].max() - D[:T].min() + 1e-8)
        w[:, :T] = (1 + (alpha - 1) * n)[None, :] * m[:, :T]
    return w, D


def prefix_mask(lengths, width):
    return (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()


def random_group(G, T, V, lengths, seed, scale=3.0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    logits = (scale * torch.randn(G, T, V, generator=g, dtype=torch.float64)).to(dtype)
    return logits, prefix_mask(lengths, T)


CASES = [  # G, T, V, lengths (padding wider than the longest member in several)
    (1, 5, 7, [5]),
    (1, 6, 7, [3]),
    (2, 6, 11, [6, 2]),
    (2, 9, 11, [4, 7]),
    (4, 12, 33, [12, 3, 8, 1]),
    (8, 10, 50, [3, 4, 5, 6, 7, 7, 2, 1]),
]


@pytest.mark.parametrize("G,T,V,lengths", CASES)
def test_matches_float64_reference(G, T, V, lengths):
    logits, mask = random_group(G, T, V, lengths, seed=G * 100 + T)
    want_w, want_D = reference_weights(logits, mask, alpha=1.7)
    D = group_divergence(logits, mask, chunk_size=3)
    assert D.dtype == torch.float32 and D.shape == (T,)
    torch.testing.assert_close(D.double(), want_D * (torch.arange(T) < max(lengths)), rtol=1e-5, atol=1e-5)
    w = token_weights(logits, mask, alpha=1.7, chunk_size=3)
    torch.testing.assert_close(w.double(), want_w, rtol=0, atol=1e-5)
    assert torch.all(w[mask.bool()] >= 1 - 1e-6) and torch.all(w[mask.bool()] <= 1.7 + 1e-6)
    assert torch.all(w[~mask.bool()] == 0)


def test_temperature_divides_scores():
    logits, mask = random_group(3, 6, 9, [6, 4, 2], seed=1)
    want, _ = reference_weights(logits, mask, alpha=1.4, temperature=0.7)
    got = token_weights(logits, mask, alpha=1.4, temperature=0.7, chunk_size=4)
    torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-5)
    assert not torch.allclose(got, token_weights(logits, mask, alpha=1.4))


def test_extreme_logits_hit_the_clamp():
    logits, mask = random_group(4, 8, 16, [8, 5, 3, 8], seed=2)
    logits = torch.where(logits > 0, torch.tensor(1e4), torch.tensor(-1e4)) + logits
    want, want_D = reference_weights(logits, mask)
    assert want_D.max() > math.exp(11)  # some d reach the clamp
    torch.testing.assert_close(token_weights(logits, mask, chunk_size=3).double(), want, rtol=0, atol=1e-5)


def test_bf16_inputs_computed_in_float32():
    logits, mask = random_group(4, 7, 40, [7, 2, 5, 6], seed=3, dtype=torch.bfloat16)
    want, _ = reference_weights(logits, mask)  # the bf16 values, upcast exactly
    got = token_weights(logits, mask, chunk_size=2)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("G", [1, 3, 8])
def test_identical_members_get_weight_one(G):
    row, _ = random_group(1, 9, 64, [9], seed=4, scale=8.0)
    logits = row.expand(G, -1, -1).contiguous()
    w = token_weights(logits, torch.ones(G, 9), alpha=1.7, chunk_size=4)
    assert torch.equal(w, torch.ones(G, 9))
    assert torch.equal(group_divergence(logits, torch.ones(G, 9)), torch.zeros(9))


def test_edge_cases_single_position_and_empty_group():
    logits, _ = random_group(3, 4, 10, [1], seed=5)
    one = prefix_mask([1, 1, 0], 4)
    assert torch.equal(token_weights(logits, one), one.float())  # T = 1: weight 1 on real tokens
    none = torch.zeros(3, 4, dtype=torch.long)
    assert torch.equal(token_weights(logits, none), torch.zeros(3, 4))
    assert torch.equal(group_divergence(logits, none), torch.zeros(4))


def test_minmax_over_the_groups_own_length():
    """Padding beyond the longest member never sets the minimum (D = 0 there would)."""
    logits, mask = random_group(2, 5, 12, [5, 5], seed=6)
    wide_logits = torch.cat([logits, torch.randn(2, 4, 12)], 1)
    wide_mask = torch.cat([mask, torch.zeros(2, 4, dtype=torch.long)], 1)
    narrow = token_weights(logits, mask)
    wide = token_weights(wide_logits, wide_mask)
    torch.testing.assert_close(wide[:, :5], narrow, rtol=0, atol=0)
    assert torch.all(wide[:, 5:] == 0) and narrow.min() == 1.0 and narrow.max() == pytest.approx(1.7)


@pytest.mark.parametrize("divergence", ["paper", "kl_to_mean", "entropy"])
def test_independent_of_chunk_size(divergence):
    logits, mask = random_group(5, 23, 70, [23, 11, 17, 4, 20], seed=7)
    base = member_divergence(logits, mask, chunk_size=23, divergence=divergence)
    for chunk in (1, 2, 5, 7, 100, None):
        got = member_divergence(logits, mask, chunk_size=chunk, divergence=divergence)
        assert ((got - base).abs() <= 1e-5 * base.abs() + 1e-6).all(), chunk


def test_alternative_divergences_match_their_definitions():
    logits, mask = random_group(3, 6, 13, [6, 3, 5], seed=8)
    x = torch.log_softmax(logits.double(), -1)
    x = torch.where(mask.bool()[..., None], x, torch.full_like(x, -math.log(13)))
    p = x.exp()
    entropy = -(p * x).sum(-1)
    kl = (p * (x - p.mean(0, keepdim=True).log())).sum(-1)
    for name, want in (("entropy", entropy), ("kl_to_mean", kl)):
        got = member_divergence(logits, mask, divergence=name).double()
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    w = token_weights(logits, mask, divergence="kl_to_mean")
    assert w[mask.bool()].min() == 1.0 and w.max() == pytest.approx(1.7)


def test_hidden_state_path_equals_logits_path():
    g = torch.Generator().manual_seed(9)
    G, T, H, V = 4, 11, 16, 37
    hidden = torch.randn(G, T, H, generator=g)
    head, bias = torch.randn(V, H, generator=g), torch.randn(V, generator=g)
    mask = prefix_mask([11, 6, 9, 2], T)
    logits = hidden @ head.T + bias
    want = token_weights(logits, mask, temperature=0.9)
    for chunk in (1, 4, None):
        got = token_weights_from_hidden_states(hidden, head, mask, lm_head_bias=bias, temperature=0.9,
                                               chunk_size=chunk)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    bf16 = token_weights_from_hidden_states(hidden.bfloat16(), head.bfloat16(), mask, chunk_size=3)
    ref, _ = reference_weights(hidden.bfloat16().double() @ head.bfloat16().double().T, mask)
    torch.testing.assert_close(bf16.double(), ref, rtol=0, atol=1e-4)


def test_batched_equals_per_group():
    G, B, T, V, H = 3, 3, 10, 21, 8
    g = torch.Generator().manual_seed(10)
    hidden, head = torch.randn(B * G, T, H, generator=g), torch.randn(V, H, generator=g)
    logits = hidden @ head.T
    mask = prefix_mask([10, 4, 6, 2, 3, 1, 9, 9, 9], T)
    per_group = torch.cat([token_weights(logits[k * G:(k + 1) * G], mask[k * G:(k + 1) * G]) for k in range(B)])
    torch.testing.assert_close(batched_token_weights(logits, mask, G, chunk_size=4), per_group)
    torch.testing.assert_close(batched_token_weights_from_hidden_states(hidden, head, mask, G), per_group,
                               rtol=0, atol=1e-5)
    # each group reaches its own maximum alpha
    assert torch.allclose(per_group.view(B, G * T).max(1).values, torch.full((B,), 1.7))


def test_no_gradient_flows_through_weights():
    hidden = torch.randn(2, 5, 4, requires_grad=True)
    head = torch.randn(9, 4, requires_grad=True)
    logits = hidden @ head.T
    mask = prefix_mask([5, 3], 5)
    for w in (token_weights(logits, mask), group_divergence(logits, mask),
              batched_token_weights(logits, mask, 2), token_weights_from_hidden_states(hidden, head, mask)):
        assert not w.requires_grad and w.grad_fn is None


def test_bad_inputs_name_the_problem():
    logits = torch.zeros(4, 3, 5)
    with pytest.raises(ValueError, match="mask has shape"):
        token_weights(logits, torch.ones(4, 2))
    with pytest.raises(ValueError, match=r"mask\[1, 2\] = 2"):
        token_weights(logits, torch.tensor([[1, 1, 1], [1, 1, 2], [1, 0, 0], [1, 0, 0]]))
    with pytest.raises(ValueError, match="multiple of group_size=3"):
        batched_token_weights(logits, torch.ones(4, 3), 3)
    with pytest.raises(ValueError, match="divergence='kl'"):
        token_weights(logits, torch.ones(4, 3), divergence="kl")
    with pytest.raises(ValueError, match="lm_head_weight has shape"):
        token_weights_from_hidden_states(torch.zeros(4, 3, 6), torch.zeros(5, 7), torch.ones(4, 3))


def test_top_entropy_mask_follows_trl_semantics():
    g = torch.Generator().manual_seed(11)
    entropies = torch.rand(4, 30, generator=g)
    mask = prefix_mask([30, 20, 10, 25], 30)
    real = entropies[mask.bool()]
    for q in (0.0, 0.2, 0.5, 1.0):
        keep = top_entropy_mask(entropies, mask, q)
        assert not keep[~mask.bool()].any()
        threshold = torch.quantile(real, 1 - q)
        assert torch.equal(keep[mask.bool()], real >= threshold)
    assert top_entropy_mask(entropies, mask, 1.0)[mask.bool()].all()
    assert top_entropy_mask(entropies, mask, 0.0).sum() == 1  # only the highest-entropy token
    assert top_entropy_mask(entropies, mask, 0.2).sum() == pytest.approx(0.2 * mask.sum(), abs=1)
    assert not top_entropy_mask(entropies, torch.zeros(4, 30), 0.2).any()
