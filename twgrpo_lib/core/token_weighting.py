"""Token weights of TW-GRPO ("focused thinking", docs/method.md §2), exact and memory-bounded.

For one group of G completions to the same prompt, with l_{i,t}(v) = log pi(v | q, o_{i,<t}) and mask m_{i,t}:

    l_{i,t}(v) = -log V                        where m_{i,t} = 0   (ended members look uniform)
    mu_t(v)    = (1/G) sum_i l_{i,t}(v)                            (group mean in log space)
    d          = clamp(mu_t(v) - l_{i,t}(v), -11, 11)
    D_{i,t}    = sum_v exp(d) - d - 1,         D_t = (1/G) sum_i D_{i,t}
    n_t        = (D_t - min D) / (max D - min D + 1e-8)           over t < T (the group's longest completion)
    w_{i,t}    = (1 + (alpha - 1) n_t) m_{i,t}

The log-distributions are computed a chunk of positions at a time for all G members, in float32, so
only (G, chunk, V) floats ever exist (plus one (chunk, V) mean); from final hidden states the LM head is
applied per chunk too, so the (G, T, V) logits are never materialised either.

Edge cases (all follow from the formula, stated here so callers can rely on them):
G = 1, or all members identical: D = 0 everywhere, so every real token gets weight 1. T = 1: one position,
max D = min D, weight 1. A group whose mask is all zero: T = 0, all weights 0. Positions at or beyond T get
D = 0 and weight 0. Logits must be finite (a -inf logit shared by all members makes d undefined).

Options for teaching, never the default (``divergence=``): ``"kl_to_mean"``, the exact KL divergence of each
member to the arithmetic mean of the G distributions; ``"entropy"``, each member's token entropy. Both reuse the
fill, the group mean over members and the min-max above; ``top_entropy_mask`` is TRL's
``top_entropy_quantile`` selection for comparison.

An option beyond the paper, never the default (``fill=``): ``"alive"`` drops the uniform fill and takes every
mean over the members still writing at t (A_t = {i : m_{i,t} = 1}, n_t = |A_t|):

    mu_t(v) = (1/n_t) sum_{i in A_t} l_{i,t}(v),     D_t = (1/n_t) sum_{i in A_t} D_{i,t}   (0 where n_t = 0)

so D_t = 0 where one answer is left. With the paper's ``"uniform"`` fill an ended member still counts, as the
uniform distribution, which is far from every confident one: after the shorter answers end, D_t measures mostly
how far the answers still writing are from uniform, and the largest weights go to the tail of the longest
answer (notebook 02).

Differences from the reference code (longmalongma/TW-GRPO, ``compute_token_importance_kl_logs_uniform``):

1. Weights are constants: computed under ``torch.no_grad`` from detached inputs. The reference builds them from
   the policy's live log-probabilities, so gradient flows through the weights into the loss by accident;
   ``token_weights_with_gradient`` reproduces that, for the trainer's ``token_weights_gradient`` switch.
2. Min-max runs over the group's own longest completion T. The reference normalises over the padded width of
   the whole batch, so with 2+ groups a shorter group's padding (D = 0) can set its minimum.
3. Memory: the reference holds the (G, T, V) log-distributions of every member several times over (log_softmax
   per row, the uniform fill, the mean, the difference, its exponential); here (G, chunk, V) twice (the
   ``kl_to_mean`` option allocates two more).
4. Precision: float32 throughout (the reference uses the model's dtype, bf16 in the paper's runs); the group
   mean is taken relative to the first member, so identical members give D = 0 exactly, and exp(d) - d - 1 is
   formed per element before the sum over V (no cancellation against V).
5. Bad shapes raise an error; the reference silently returns all-ones weights.
6. Scores are divided by the sampling temperature before the softmax (the paper's runs use 1.0: no change).
"""

from __future__ import annotations

import math

import torch

DIVERGENCES = ("paper", "kl_to_mean", "entropy")
FILLS = ("uniform", "alive")  # what stands in for a member that has ended: the paper's uniform, or nothing
CLAMP = 11.0  # |d| bound of the paper's estimator
EPS = 1e-8  # min-max denominator guard of the paper
# default budget of one (G, chunk, V) float32 buffer: cache-sized on CPU, large enough on GPU to keep kernels busy
CHUNK_BYTES = {"cpu": 4 * 2**20, "cuda": 256 * 2**20}


def _check_mask(mask: torch.Tensor, shape: tuple[int, int], name: str = "mask") -> torch.Tensor:
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(mask.shape)}, expected {tuple(shape)}")
    m = mask.detach()
    bad = (m != 0) & (m != 1)
    if bool(bad.any()):
        i, t = (int(k) for k in bad.nonzero()[0])
        raise ValueError(f"{name}[{i}, {t}] = {m[i, t].item()}: a completion mask holds only 0 and 1")
    return m.bool()


def _check_options(divergence: str, temperature: float, chunk_size: int | None, fill: str = "uniform") -> None:
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence={divergence!r}: choose one of {DIVERGENCES}")
    if fill not in FILLS:
        raise ValueError(f"fill={fill!r}: choose one of {FILLS}")
    if not temperature > 0:
        raise ValueError(f"temperature={temperature}: must be > 0")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size}: must be >= 1 (or None for the default budget)")


def _chunk_len(G: int, V: int, chunk_size: int | None, device: torch.device) -> int:
    budget = CHUNK_BYTES.get(device.type, CHUNK_BYTES["cuda"])
    return chunk_size if chunk_size is not None else max(1, budget // (4 * G * V))


def _span(mask: torch.Tensor) -> int:
    """T: one past the last position where any member still has a token (0 if none)."""
    alive = mask.any(0).nonzero()
    return int(alive[-1]) + 1 if len(alive) else 0


def _member_divergence_chunk(logp: torch.Tensor, scratch: torch.Tensor, divergence: str,
                             alive: torch.Tensor | None = None) -> torch.Tensor:
    """D_{i,t} for a chunk of filled log-distributions ``logp`` (G, c, V) float32; overwrites both buffers.

    ``alive`` (G, c) bool: the ``"alive"`` fill, means over the members alive at each position and 0 for the
    others (``logp`` of an ended member is ignored); None: the uniform fill, already in ``logp``.
    """
    G, _, V = logp.shape
    if alive is not None:
        return _alive_divergence_chunk(logp, scratch, divergence, alive)
    if divergence == "paper":
        if G > 1:
            logp[1:] -= logp[0]  # (G, c, V) relative to member 0: exact 0 for identical members
            logp[0] = 0.0
        mu = logp.mean(0)  # (c, V)
        d = torch.sub(mu, logp, out=logp).clamp_(-CLAMP, CLAMP)  # (G, c, V), in place
        e = torch.exp(d, out=scratch)  # (G, c, V)
        return e.sub_(d).sub_(1.0).sum(-1)  # (G, c): sum_v exp(d) - d - 1, per element for accuracy
    if divergence == "kl_to_mean":
        log_mean = torch.logsumexp(logp, 0).sub_(math.log(G))  # (c, V): log of the mean probability
        diff = torch.sub(logp, log_mean, out=scratch)  # (G, c, V)
        return diff.mul_(logp.exp_()).sum(-1)  # (G, c): sum_v p (log p - log pbar)
    p = torch.exp(logp, out=scratch)  # entropy
    return -(p.mul_(logp).sum(-1))  # (G, c)


def _alive_divergence_chunk(logp: torch.Tensor, scratch: torch.Tensor, divergence: str,
                            alive: torch.Tensor) -> torch.Tensor:
    """``_member_divergence_chunk`` with the group mean over the members alive at each position only."""
    G, c, V = logp.shape
    w = alive.to(logp.dtype)  # (G, c)
    n = w.sum(0).clamp_(min=1.0)  # (c,) alive members (1 where none: the sums below are 0 there)
    if divergence == "paper":
        first = alive.to(torch.uint8).argmax(0)  # (c,) first alive member: the reference, as member 0 above
        logp -= logp[first, torch.arange(c, device=logp.device)]  # (G, c, V): identical members give exactly 0
        logp.mul_(w[..., None])  # ended members 0
        mu = logp.sum(0).div_(n[:, None])  # (c, V): mean over the alive members
        d = torch.sub(mu, logp, out=logp).clamp_(-CLAMP, CLAMP)  # (G, c, V)
        e = torch.exp(d, out=scratch)
        return e.sub_(d).sub_(1.0).sum(-1).mul_(w)  # (G, c), 0 for ended members
    if divergence == "kl_to_mean":
        logp.masked_fill_(~alive[..., None], -math.inf)  # ended members leave the mixture
        log_mean = torch.logsumexp(logp, 0).sub_(n.log()[:, None])  # (c, V)
        diff = torch.sub(logp, log_mean, out=scratch)  # (G, c, V); -inf - x for ended members
        kl = diff.mul_(logp.exp_()).sum(-1)  # (G, c): nan for ended members
        return torch.where(alive, kl, torch.zeros_like(kl))
    p = torch.exp(logp, out=scratch)  # entropy, per member
    return -(p.mul_(logp).sum(-1)).mul_(w)  # (G, c)


def _group_average(D_members: torch.Tensor, mask: torch.Tensor, fill: str) -> torch.Tensor:
    """D_t (T_pad,): the mean of D_{i,t} over all G members (uniform fill) or over those alive at t."""
    if fill == "uniform":
        return D_members.mean(0)
    return D_members.sum(0) / mask.sum(0).clamp(min=1).to(D_members.dtype)


@torch.no_grad()
def _member_divergence(score_chunks, mask: torch.Tensor, V: int, chunk: int, divergence: str,
                       temperature: float, fill: str = "uniform") -> torch.Tensor:
    """D_{i,t} (G, T_pad) float32 from ``score_chunks(t0, t1, out) -> (G, t1 - t0, V)`` raw scores.

    ``mask`` (G, T_pad) bool on the scores' device. Two (G, chunk, V) float32 buffers are reused by every chunk.
    """
    G, T_pad = mask.shape
    out = torch.zeros(G, T_pad, dtype=torch.float32, device=mask.device)
    T = _span(mask)
    if T == 0:
        return out
    c = min(chunk, T)
    buf_a = torch.empty(G * c * V, dtype=torch.float32, device=mask.device)
    buf_b = torch.empty_like(buf_a)
    uniform = -math.log(V)
    host_mask = mask.cpu()  # control flow below reads the mask without device syncs
    for t0 in range(0, T, c):
        t1 = min(t0 + c, T)
        a, b = (buf[: G * (t1 - t0) * V].view(G, t1 - t0, V) for buf in (buf_a, buf_b))  # contiguous
        scores = score_chunks(t0, t1, a)  # (G, c, V), any float dtype
        for i in range(G):  # one member at a time: its (c, V) slice of (G, T, V) logits is contiguous
            alive = host_mask[i, t0:t1]  # (c,)
            if not alive.any():
                b[i].fill_(uniform)
                continue
            x = scores[i]  # (c, V)
            if x.dtype != torch.float32 or temperature != 1.0:
                x = a[i].copy_(x).div_(temperature)
            torch.log_softmax(x, -1, out=b[i])
            if not alive.all():
                b[i].index_fill_(0, (~alive).nonzero().squeeze(1).to(b.device), uniform)
        members = mask[:, t0:t1] if fill == "alive" else None  # (G, c) the alive fill's means are over these
        out[:, t0:t1] = _member_divergence_chunk(b, a, divergence, members)
    return out


def _weights_from_divergence(D: torch.Tensor, mask: torch.Tensor, alpha: float) -> torch.Tensor:
    """w (G, T_pad) from D_t (T_pad,): min-max over t < T, scaled to [1, alpha], times the mask."""
    T = _span(mask)
    if T == 0:
        return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    live = D[:T]
    n = (D - live.min()) / (live.max() - live.min() + EPS)  # (T_pad,)
    return (1.0 + (alpha - 1.0) * n)[None, :] * mask.float()  # (G, T_pad)


def _logit_chunks(logits: torch.Tensor):
    return lambda t0, t1, out: logits[:, t0:t1]


def _hidden_chunks(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    def chunks(t0, t1, out):  # out (G, c, V) float32 receives h W^T + b
        torch.matmul(hidden[:, t0:t1].float(), weight.T, out=out)
        return out if bias is None else out.add_(bias)
    return chunks


def member_divergence(logits: torch.Tensor, mask: torch.Tensor, *, temperature: float = 1.0,
                      chunk_size: int | None = None, divergence: str = "paper", fill: str = "uniform") -> torch.Tensor:
    """D_{i,t} (G, T) float32 for one group: the per-member term before the group average.

    ``logits`` (G, T, V) raw scores in any float dtype, ``mask`` (G, T) of 0/1. With
    ``divergence="entropy"`` this is each member's token entropy (log V where masked), the input of
    ``top_entropy_mask``. Positions at or beyond the group's longest completion are 0; with
    ``fill="alive"`` so is every ended member's term.

    >>> member_divergence(torch.zeros(1, 2, 4), torch.tensor([[1, 0]]), divergence="entropy")
    tensor([[1.3863, 0.0000]])
    """
    if logits.dim() != 3:
        raise ValueError(f"logits has shape {tuple(logits.shape)}, expected (G, T, V)")
    _check_options(divergence, temperature, chunk_size, fill)
    m = _check_mask(mask, logits.shape[:2]).to(logits.device)
    G, _, V = logits.shape
    chunk = _chunk_len(G, V, chunk_size, logits.device)
    return _member_divergence(_logit_chunks(logits.detach()), m, V, chunk, divergence, temperature, fill)


def group_divergence(logits: torch.Tensor, mask: torch.Tensor, *, temperature: float = 1.0,
                     chunk_size: int | None = None, divergence: str = "paper", fill: str = "uniform") -> torch.Tensor:
    """D_t (T,) float32: the group's divergence per position, (1/G) sum_i D_{i,t}; with ``fill="alive"`` the
    mean over the members alive at t (module docstring).

    ``logits`` (G, T, V) raw scores (divided by ``temperature`` before the log-softmax), ``mask`` (G, T) 0/1;
    T may be padded wider than the longest completion (those positions get 0). ``chunk_size`` positions are
    processed at a time (default: a (G, chunk, V) float32 buffer of about 4 MiB on CPU, 256 MiB on GPU).
    Two members whose distributions over V = 2 tokens agree at position 0, (0.5, 0.5); member 0 has ended at
    position 1 (filled with the uniform distribution) where member 1 has (0.9, 0.1):

    >>> logits = torch.tensor([[[0.0, 0.0], [5.0, 0.0]], [[0.0, 0.0], [math.log(9.0), 0.0]]])
    >>> group_divergence(logits, torch.tensor([[1, 0], [1, 1]])).round(decimals=4)
    tensor([0.0000, 0.3851])

    Over the answers still writing, position 1 has one answer left, so nothing disagrees there:

    >>> group_divergence(logits, torch.tensor([[1, 0], [1, 1]]), fill="alive")
    tensor([0., 0.])
    """
    D = member_divergence(logits, mask, temperature=temperature, chunk_size=chunk_size, divergence=divergence,
                          fill=fill)
    return _group_average(D, mask.detach().to(D.device), fill)


def token_weights(logits: torch.Tensor, mask: torch.Tensor, alpha: float = 1.7, *, temperature: float = 1.0,
                  chunk_size: int | None = None, divergence: str = "paper", fill: str = "uniform") -> torch.Tensor:
    """w_{i,t} (G, T) float32 = (1 + (alpha - 1) n_t) m_{i,t}, n_t the min-max normalised ``group_divergence``.

    Real tokens get a weight in [1, alpha], masked positions 0; the position where the group disagrees most
    gets alpha, the one where it agrees most gets 1. Same arguments as ``group_divergence``. No gradient flows
    through the result. With the example of ``group_divergence`` (members agree at 0, disagree at 1):

    >>> logits = torch.tensor([[[0.0, 0.0], [5.0, 0.0]], [[0.0, 0.0], [math.log(9.0), 0.0]]])
    >>> token_weights(logits, torch.tensor([[1, 0], [1, 1]]), alpha=1.5)
    tensor([[1.0000, 0.0000],
            [1.0000, 1.5000]])
    """
    D = group_divergence(logits, mask, temperature=temperature, chunk_size=chunk_size, divergence=divergence,
                         fill=fill)
    return _weights_from_divergence(D, mask.detach().bool().to(D.device), alpha)


def token_weights_with_gradient(log_probs: torch.Tensor, mask: torch.Tensor, alpha: float = 1.7, *,
                                fill: str = "uniform") -> torch.Tensor:
    """The weights of ``token_weights``, differentiable: the reference's form, gradient flowing through them.

    ``log_probs`` (G, T, V) log-distributions of one group (the policy's, live), ``mask`` (G, T) 0/1. Same
    formula, written over the full (G, T, V) tensor, so it costs the memory the chunked form avoids; only
    ``TWGRPOConfig.token_weights_gradient`` (off by default) uses it.

    >>> logits = torch.tensor([[[0.0, 0.0], [5.0, 0.0]], [[0.0, 0.0], [math.log(9.0), 0.0]]], requires_grad=True)
    >>> w = token_weights_with_gradient(logits.log_softmax(-1), torch.tensor([[1, 0], [1, 1]]), alpha=1.5)
    >>> w.detach(), w.requires_grad
    (tensor([[1.0000, 0.0000],
            [1.0000, 1.5000]]), True)
    """
    if log_probs.dim() != 3:
        raise ValueError(f"log_probs has shape {tuple(log_probs.shape)}, expected (G, T, V)")
    _check_options("paper", 1.0, None, fill)
    m = _check_mask(mask, log_probs.shape[:2]).to(log_probs.device).bool()
    V = log_probs.shape[-1]
    if fill == "alive":
        w = m.float()  # (G, T)
        n = w.sum(0).clamp(min=1.0)  # (T,)
        lp = log_probs.float() * w[..., None]  # ended members 0
        d = ((lp.sum(0) / n[:, None])[None] - lp).clamp(-CLAMP, CLAMP)  # (G, T, V)
        D = ((d.exp() - d - 1.0).sum(-1) * w).sum(0) / n  # (T,)
        return _weights_from_divergence(D, m, alpha)
    filled = torch.where(m[..., None], log_probs.float(), torch.full((), -math.log(V), device=log_probs.device))
    d = (filled.mean(0, keepdim=True) - filled).clamp(-CLAMP, CLAMP)  # (G, T, V)
    D = (d.exp() - d - 1.0).sum(-1).mean(0)  # (T,)
    return _weights_from_divergence(D, m, alpha)


def _split_groups(rows: int, group_size: int, name: str) -> int:
    if group_size < 1 or rows % group_size:
        raise ValueError(f"{name} has {rows} rows, not a multiple of group_size={group_size}")
    return rows // group_size


def batched_token_weights(logits: torch.Tensor, mask: torch.Tensor, group_size: int, alpha: float = 1.7, *,
                          temperature: float = 1.0, chunk_size: int | None = None,
                          divergence: str = "paper", fill: str = "uniform") -> torch.Tensor:
    """``token_weights`` for B groups laid out as B * G contiguous rows: logits (B*G, T, V), mask (B*G, T).

    Each group is normalised on its own (over its own longest completion). Returns (B*G, T) float32.

    >>> batched_token_weights(torch.zeros(4, 3, 5), torch.ones(4, 3), group_size=2)
    tensor([[1., 1., 1.],
            [1., 1., 1.],
            [1., 1., 1.],
            [1., 1., 1.]])
    """
    if logits.dim() != 3:
        raise ValueError(f"logits has shape {tuple(logits.shape)}, expected (B*G, T, V)")
    _check_mask(mask, logits.shape[:2])
    B = _split_groups(logits.shape[0], group_size, "logits")
    groups = [token_weights(logits[g * group_size:(g + 1) * group_size], mask[g * group_size:(g + 1) * group_size],
                            alpha, temperature=temperature, chunk_size=chunk_size, divergence=divergence, fill=fill)
              for g in range(B)]
    return torch.cat(groups, 0)


def batched_token_weights_from_hidden_states(hidden_states: torch.Tensor, lm_head_weight: torch.Tensor,
                                             mask: torch.Tensor, group_size: int, alpha: float = 1.7, *,
                                             lm_head_bias: torch.Tensor | None = None, temperature: float = 1.0,
                                             chunk_size: int | None = None, divergence: str = "paper",
                                             fill: str = "uniform") -> torch.Tensor:
    """Token weights for B groups from final hidden states: the form a trainer calls.

    ``hidden_states`` (B*G, T, H) are the states whose LM-head outputs score the completion tokens (position t
    predicts completion token t), ``lm_head_weight`` (V, H), optional ``lm_head_bias`` (V,), ``mask``
    (B*G, T). The head is applied to ``chunk_size`` positions of one group at a time in float32 (the weight is
    cast to float32 once per call if it is not already: V * H * 4 bytes), so only (G, chunk, V) logits exist.
    Returns (B*G, T) float32, equal to ``batched_token_weights`` of the full logits.

    >>> h = torch.tensor([[[1.0], [0.0]], [[-1.0], [2.0]]])      # (G=2, T=2, H=1)
    >>> batched_token_weights_from_hidden_states(h, torch.tensor([[1.0], [0.0]]), torch.ones(2, 2), 2)
    tensor([[1.0000, 1.7000],
            [1.0000, 1.7000]])
    """
    if hidden_states.dim() != 3:
        raise ValueError(f"hidden_states has shape {tuple(hidden_states.shape)}, expected (B*G, T, H)")
    H = hidden_states.shape[-1]
    if lm_head_weight.dim() != 2 or lm_head_weight.shape[1] != H:
        raise ValueError(f"lm_head_weight has shape {tuple(lm_head_weight.shape)}, expected (V, {H})")
    V = lm_head_weight.shape[0]
    if lm_head_bias is not None and tuple(lm_head_bias.shape) != (V,):
        raise ValueError(f"lm_head_bias has shape {tuple(lm_head_bias.shape)}, expected ({V},)")
    _check_options(divergence, temperature, chunk_size, fill)
    m = _check_mask(mask, hidden_states.shape[:2]).to(hidden_states.device)
    B = _split_groups(hidden_states.shape[0], group_size, "hidden_states")
    weight = lm_head_weight.detach().float()
    bias = None if lm_head_bias is None else lm_head_bias.detach().float()
    chunk = _chunk_len(group_size, V, chunk_size, hidden_states.device)
    out = []
    for g in range(B):
        rows = slice(g * group_size, (g + 1) * group_size)
        chunks = _hidden_chunks(hidden_states[rows].detach(), weight, bias)
        D = _group_average(_member_divergence(chunks, m[rows], V, chunk, divergence, temperature, fill),
                           m[rows], fill)  # (T,)
        out.append(_weights_from_divergence(D, m[rows], alpha))
    return torch.cat(out, 0)


def token_weights_from_hidden_states(hidden_states: torch.Tensor, lm_head_weight: torch.Tensor,
                                     mask: torch.Tensor, alpha: float = 1.7, *,
                                     lm_head_bias: torch.Tensor | None = None, temperature: float = 1.0,
                                     chunk_size: int | None = None, divergence: str = "paper",
                                     fill: str = "uniform") -> torch.Tensor:
    """``token_weights`` of one group (G, T, H) from hidden states and the LM head (V, H); see the batched form.

    >>> h = torch.tensor([[[1.0], [0.0]], [[-1.0], [2.0]]])
    >>> token_weights_from_hidden_states(h, torch.tensor([[1.0], [0.0]]), torch.tensor([[1, 0], [1, 1]]))
    tensor([[1.0000, 0.0000],
            [1.0000, 1.7000]])
    """
    return batched_token_weights_from_hidden_states(
        hidden_states, lm_head_weight, mask, hidden_states.shape[0], alpha, lm_head_bias=lm_head_bias,
        temperature=temperature, chunk_size=chunk_size, divergence=divergence, fill=fill)


def top_entropy_mask(entropies: torch.Tensor, mask: torch.Tensor, quantile: float = 0.2) -> torch.Tensor:
    """TRL's ``top_entropy_quantile`` selection: keep the real tokens in the top ``quantile`` by entropy.

    Threshold = the (1 - quantile) quantile (linear interpolation) of the entropies of real tokens; a token is
    kept if its entropy >= threshold and its mask is 1. ``quantile=1`` keeps every real token, ``0`` the
    highest-entropy one(s); no real token gives an all-False mask. Returns bool, the shape of ``entropies``.

    >>> top_entropy_mask(torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.7, 2.0]]), torch.tensor([[1, 1, 1], [1, 1, 0]]), 0.4)
    tensor([[False,  True, False],
            [False,  True, False]])
    """
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile={quantile}: must be in [0, 1]")
    if entropies.dim() != 2:
        raise ValueError(f"entropies has shape {tuple(entropies.shape)}, expected (B, T)")
    m = _check_mask(mask, entropies.shape)
    real = entropies.detach()[m].float()
    if real.numel() == 0:
        return torch.zeros_like(m)
    threshold = torch.quantile(real, 1.0 - quantile)
    return (entropies.detach() * m >= threshold) & m
