"""The "answers still writing" fill (``fill="alive"``) against a float64 reference written here from its
definition (core/token_weighting.py), on hand-made and random groups, every computation path, and its memory."""

import json
import math
import subprocess
import sys

import pytest
import torch

from twgrpo_lib.core.token_weighting import (
    batched_token_weights,
    batched_token_weights_from_hidden_states,
    group_divergence,
    member_divergence,
    token_weights,
    token_weights_from_hidden_states,
    token_weights_with_gradient,
)


def reference_alive(logits, mask, alpha=1.7, temperature=1.0, divergence="paper"):
    """D_t and w over the members alive at t, in float64, one position at a time (no fill, no tricks)."""
    x = torch.log_softmax(logits.double() / temperature, -1)
    G, T_pad, _ = x.shape
    m = mask.bool()
    D = torch.zeros(T_pad, dtype=torch.float64)
    for t in range(T_pad):
        alive = m[:, t].nonzero().squeeze(1).tolist()
        if not alive:
            continue
        lp = x[alive, t]  # (n, V)
        if divergence == "paper":
            d = (lp.mean(0) - lp).clamp(-11, 11)
            per_member = (d.exp() - d - 1).sum(-1)
        elif divergence == "kl_to_mean":
            per_member = (lp.exp() * (lp - lp.exp().mean(0).log())).sum(-1)
        else:
            per_member = -(lp.exp() * lp).sum(-1)
        D[t] = per_member.mean()
    live = [t for t in range(T_pad) if m[:, t].any()]
    w = torch.zeros(G, T_pad, dtype=torch.float64)
    if live:
        T = live[-1] + 1
        n = (D[:T] - D[:T].min()) / (D[:T].max() - D[:T].min() + 1e-8)
        w[:, :T] = (1 + (alpha - 1) * n)[None, :] * m[:, :T]
    return D, w


def prefix_mask(lengths, width):
    return (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()


def random_group(G, T, V, lengths, seed, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(G, T, V, generator=g), prefix_mask(lengths, T)


def test_hand_made_group_tail_of_the_longest_answer():
    """Three answers agree while all write; then two end and the longest writes on alone. The paper's uniform
    fill puts the largest weight on that lonely tail; over the answers still writing nothing disagrees there,
    and the largest weight goes to the one position where the writing answers differ (t = 1)."""
    agree = [0.0, 2.0, 0.0]
    logits = torch.tensor([
        [agree, [3.0, 0.0, 0.0], agree, [0.0, 0.0, 0.0]],
        [agree, [0.0, 3.0, 0.0], agree, [0.0, 0.0, 0.0]],
        [agree, [0.0, 0.0, 3.0], agree, [4.0, 0.0, 0.0]],
    ])  # (G=3, T=4, V=3); positions 2 and 3 of members 0 and 1 are padding
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    uniform = token_weights(logits, mask, alpha=2.0)
    alive = token_weights(logits, mask, alpha=2.0, fill="alive")
    assert int(uniform[2].argmax()) == 3, uniform  # the lone tail gets alpha under the uniform fill
    torch.testing.assert_close(alive, torch.tensor([[1.0, 2.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0],
                                                    [1.0, 2.0, 1.0, 1.0]]))
    D = group_divergence(logits, mask, fill="alive")
    assert D[0] == 0 and D[2] == 0 and D[3] == 0 and D[1] > 0
    torch.testing.assert_close(D.double(), reference_alive(logits, mask)[0], rtol=1e-6, atol=1e-7)


def test_all_members_alive_equals_the_paper():
    logits, mask = random_group(4, 7, 19, [7, 7, 7, 7], seed=1)
    torch.testing.assert_close(token_weights(logits, mask, fill="alive"), token_weights(logits, mask))
    torch.testing.assert_close(group_divergence(logits, mask, fill="alive"), group_divergence(logits, mask))


CASES = [  # G, T, V, lengths (several with padding beyond the longest member)
    (1, 5, 7, [3]),
    (2, 6, 11, [6, 2]),
    (3, 8, 13, [1, 8, 5]),
    (4, 12, 33, [12, 3, 8, 1]),
    (8, 10, 50, [3, 4, 5, 6, 7, 7, 2, 1]),
]


@pytest.mark.parametrize("G,T,V,lengths", CASES)
@pytest.mark.parametrize("divergence", ["paper", "kl_to_mean", "entropy"])
def test_matches_float64_reference(G, T, V, lengths, divergence):
    logits, mask = random_group(G, T, V, lengths, seed=G * 10 + T)
    want_D, want_w = reference_alive(logits, mask, alpha=1.6, temperature=0.8, divergence=divergence)
    for chunk in (1, 3, None):
        D = group_divergence(logits, mask, temperature=0.8, chunk_size=chunk, divergence=divergence, fill="alive")
        torch.testing.assert_close(D.double(), want_D, rtol=1e-5, atol=1e-5)
        w = token_weights(logits, mask, 1.6, temperature=0.8, chunk_size=chunk, divergence=divergence, fill="alive")
        torch.testing.assert_close(w.double(), want_w, rtol=0, atol=1e-5)
    per_member = member_divergence(logits, mask, divergence=divergence, fill="alive")
    assert torch.all(per_member[~mask.bool()] == 0), "an ended member contributes nothing"


def test_identical_writing_members_give_exactly_zero():
    row, _ = random_group(1, 6, 40, [6], seed=2, scale=8.0)
    logits = torch.cat([row.expand(3, -1, -1), torch.randn(1, 6, 40)])  # member 3 differs but ends at once
    mask = prefix_mask([6, 6, 6, 1], 6)
    D = group_divergence(logits, mask, fill="alive")
    assert torch.equal(D[1:], torch.zeros(5))


def test_hidden_state_batched_and_gradient_paths_agree():
    g = torch.Generator().manual_seed(3)
    G, B, T, H, V = 3, 2, 9, 8, 23
    hidden, head = torch.randn(B * G, T, H, generator=g), torch.randn(V, H, generator=g)
    mask = prefix_mask([9, 4, 2, 6, 6, 1], T)
    logits = hidden @ head.T
    per_group = torch.cat([reference_alive(logits[k * G:(k + 1) * G], mask[k * G:(k + 1) * G])[1] for k in range(B)])
    got = {
        "batched": batched_token_weights(logits, mask, G, chunk_size=2, fill="alive"),
        "hidden": batched_token_weights_from_hidden_states(hidden, head, mask, G, chunk_size=4, fill="alive"),
        "one group": torch.cat([token_weights_from_hidden_states(hidden[k * G:(k + 1) * G], head,
                                                                 mask[k * G:(k + 1) * G], fill="alive")
                                for k in range(B)]),
        "with gradient": torch.cat([token_weights_with_gradient(logits[k * G:(k + 1) * G].log_softmax(-1),
                                                                mask[k * G:(k + 1) * G], fill="alive")
                                    for k in range(B)]).detach(),
    }
    for name, w in got.items():
        torch.testing.assert_close(w.double(), per_group, rtol=0, atol=1e-5, msg=name)


def test_gradient_flows_only_in_the_reference_form():
    logits = torch.randn(3, 5, 7, requires_grad=True)
    mask = prefix_mask([5, 2, 4], 5)
    assert not token_weights(logits, mask, fill="alive").requires_grad
    w = token_weights_with_gradient(logits.log_softmax(-1), mask, fill="alive")
    w[mask.bool()].sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_unknown_fill_is_an_error():
    with pytest.raises(ValueError, match="fill='none'"):
        token_weights(torch.zeros(2, 3, 4), torch.ones(2, 3), fill="none")
    with pytest.raises(ValueError, match="fill='none'"):
        token_weights_with_gradient(torch.zeros(2, 3, 4), torch.ones(2, 3), fill="none")


PEAK_SCRIPT = """
import json, resource, sys, torch
from twgrpo_lib.core.token_weighting import token_weights_from_hidden_states
torch.set_num_threads(1)
G, T, H, V = 4, 1024, 16, 8192
hidden, head = torch.randn(G, T, H), torch.randn(V, H)
mask = (torch.arange(T)[None] < torch.tensor([[T], [700], [300], [50]])).long()
token_weights_from_hidden_states(hidden[:, :8], head, mask[:, :8], fill=sys.argv[1])  # warm-up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
w = token_weights_from_hidden_states(hidden, head, mask, fill=sys.argv[1])
print(json.dumps({"extra": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before,
                  "logits": G * T * V * 4, "max": float(w.max())}))
"""


@pytest.mark.parametrize("fill", ["uniform", "alive"])
def test_memory_stays_far_below_the_logits(fill):
    """Peak RSS in a fresh process: (G, T, V) float32 logits would be 128 MiB; the chunked paths add a few MiB."""
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, fill], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["extra"] < report["logits"] / 4, report
    assert math.isclose(report["max"], 1.7, rel_tol=1e-5)
