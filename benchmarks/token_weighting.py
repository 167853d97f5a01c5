"""Token weights: time and peak memory of the chunked computation against the full-tensor form.

    .venv/bin/python benchmarks/token_weighting.py            # all cases, about 10-20 minutes on 2 cores
    .venv/bin/python benchmarks/token_weighting.py --quick    # small cases only, under a minute

Prints a table and writes ``benchmarks/results/token_weighting.md`` and ``.json``.

Methods, same inputs (float32 logits (G, T, V) ~ N(0, 3^2), members ending at different lengths):
- ``chunked``: ``twgrpo_lib.core.token_weighting.token_weights`` (default chunk size).
- ``naive``: the definition over full tensors, the reference's shape of computation (log_softmax of all
  (G, T, V), uniform fill with ``where``, mean, clamp, exp, sum), written here from docs/method.md §2.
- ``floor``: only ``torch.log_softmax`` over the same logits, into a preallocated output, one member at a time
  (the same arithmetic as one call over (G, T, V), with 1/G of the output memory).
- ``hidden``: ``token_weights_from_hidden_states`` from (G, T, H) hidden states and a (V, H) LM head.

Peak memory: torch's CPU allocations are invisible to tracemalloc, so every (case, method) runs in a fresh
subprocess that allocates its inputs in place (no temporaries), runs a tiny warm-up, reads its resident set
size (RSS), runs the method once and reads the peak RSS the kernel recorded (``ru_maxrss``). Extra peak =
peak - RSS before; it includes everything the method allocates, freed or not. Time: median of ``--repeats``
further runs in the same process. The machine's load average is recorded with every case: the machine is
shared, and with more runnable threads than cores the many small per-chunk kernels lose more than the one
big ``log_softmax`` does, so ratios are most meaningful at low load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

GIB = 2**30
CASES = [(8, 256, 32000), (8, 256, 151936), (8, 1024, 32000), (8, 1024, 151936)]
QUICK = [(8, 64, 32000), (8, 64, 151936)]
PAPER = (8, 4096, 151936, 3584)  # G, T, V, H: Qwen2.5-VL-7B hidden size, V as in the brief's vocabulary
NAIVE_FULL_TENSORS = 6  # (G, T, V) float32 tensors alive at once in ``naive`` (see the function)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def naive_weights(logits, mask, alpha=1.7):
    """The definition over full (G, T, V) tensors, as the reference computes it (one group)."""
    import math

    import torch

    with torch.no_grad():
        G, T, V = logits.shape
        logp = torch.log_softmax(logits.float(), -1)  # (G, T, V)          1
        uniform = torch.full_like(logp, -math.log(V))  # (G, T, V)         2
        filled = torch.where(mask.bool()[..., None], logp, uniform)  # 3
        mu = filled.mean(0, keepdim=True)  # (1, T, V)
        diff = (mu - filled).clamp(-11, 11)  # (G, T, V)                   4 (+1 temporary)
        D = (torch.exp(diff) - diff - 1).sum(-1).mean(0)  # (T,)           +2 temporaries
        n = (D - D.min()) / (D.max() - D.min() + 1e-8)
        return (1 + (alpha - 1) * n)[None, :] * mask


def run_case(method: str, G: int, T: int, V: int, H: int, repeats: int, threads: int) -> dict:
    """One (case, method) in this process: returns seconds and extra peak bytes."""
    import torch

    from twgrpo_lib.core import token_weighting as tw

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    lengths = torch.linspace(T, T // 4, G).long()  # members end at different lengths
    mask = (torch.arange(T)[None, :] < lengths[:, None]).float()
    tw.token_weights(torch.randn(2, 3, 5), torch.ones(2, 3))  # warm-up: load kernels and code pages
    if method == "hidden":
        hidden = torch.empty(G, T, H).normal_(0, 1)
        head = torch.empty(V, H).normal_(0, H ** -0.5 * 3)
        fn = lambda: tw.token_weights_from_hidden_states(hidden, head, mask)  # noqa: E731
    else:
        logits = torch.empty(G, T, V).normal_(0, 3)
        if method == "chunked":
            fn = lambda: tw.token_weights(logits, mask)  # noqa: E731
        elif method == "naive":
            fn = lambda: naive_weights(logits, mask)  # noqa: E731
        else:
            out = torch.empty(T, V)

            def fn():
                for i in range(G):
                    torch.log_softmax(logits[i], -1, out=out)
    before = rss_bytes()
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    extra = peak_bytes() - before
    times = [first]
    for _ in range(repeats - 1):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "extra_peak_bytes": max(extra, 0), "runs": len(times),
            "load_avg_1min": os.getloadavg()[0]}


def in_subprocess(method, G, T, V, H, repeats, threads) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, str(G), str(T), str(V), str(H), str(repeats), str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"rc {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def available_bytes() -> int:
    import psutil

    return psutil.virtual_memory().available


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cases only, no paper-scale run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--memory-limit-gib", type=float, default=10.0,
                        help="skip a run whose estimated need exceeds this or the memory available now")
    parser.add_argument("--no-paper", action="store_true", help="skip the paper-scale hidden-state run")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        method, *nums = args.worker
        print(json.dumps(run_case(method, *(int(x) for x in nums))))
        return 0

    rows = []
    for G, T, V in (QUICK if args.quick else CASES):
        full = G * T * V * 4  # (G, T, V) float32
        need = {"floor": full + T * V * 4, "chunked": full, "naive": full * (1 + NAIVE_FULL_TENSORS)}
        row = {"G": G, "T": T, "V": V, "logits_gib": full / GIB}
        for method in ("floor", "chunked", "naive"):
            limit = min(args.memory_limit_gib * GIB, available_bytes() - 2 * GIB)
            if need[method] > limit:
                row[method] = {"skipped": f"would need about {need[method] / GIB:.1f} GiB"}
            else:
                row[method] = in_subprocess(method, G, T, V, 0, args.repeats, args.threads)
            print(G, T, V, method, row[method], flush=True)
        rows.append(row)

    paper = None
    if not (args.quick or args.no_paper):
        G, T, V, H = PAPER
        paper = {"G": G, "T": T, "V": V, "H": H, "logits_gib": G * T * V * 4 / GIB,
                 "naive_estimate_gib": G * T * V * 4 * (1 + NAIVE_FULL_TENSORS) / GIB,
                 "inputs_gib": (G * T * H + V * H) * 4 / GIB,
                 "result": in_subprocess("hidden", G, T, V, H, 1, args.threads)}
        print("paper scale", paper, flush=True)

    report = {"threads": args.threads, "cpu_count": os.cpu_count(), "rows": rows, "paper": paper,
              "naive_full_tensors": NAIVE_FULL_TENSORS}
    args.out.mkdir(parents=True, exist_ok=True)
    name = "token_weighting_quick" if args.quick else "token_weighting"
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    (args.out / f"{name}.md").write_text(text)
    print(text)
    return 0


def _cell(r: dict, key: str) -> str:
    if "skipped" in r:
        return "skipped"
    if "error" in r:
        return "error"
    return f"{r['seconds']:.2f}" if key == "s" else f"{r['extra_peak_bytes'] / GIB:.3f}"


def markdown(report: dict) -> str:
    lines = [
        "# Token weights: chunked vs full-tensor (CPU)",
        "",
        f"{report['threads']} torch threads, {report['cpu_count']} cores (shared machine; load average per run "
        "in the JSON). Time: median seconds. Memory: extra peak RSS in GiB over the inputs.",
        "Ratio to floor: weight time / one log_softmax over the same logits. Extra memory as a fraction of the "
        "(G, T, V) float32 logits.",
        "With a load average above the core count, multi-threaded runs of the many small per-chunk kernels wait "
        "for descheduled threads (the one big log_softmax barely notices); `--threads 1` then gives the "
        "intrinsic ratios.",
        "",
        "| G | T | V | logits GiB | floor s | chunked s | naive s | chunked / floor | naive / chunked "
        "| chunked extra GiB | naive extra GiB | chunked extra / logits | naive extra / logits | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for row in report["rows"]:
        f, c, n = row["floor"], row["chunked"], row["naive"]
        ok = lambda r: "seconds" in r  # noqa: E731
        ratio = f"{c['seconds'] / f['seconds']:.2f}" if ok(c) and ok(f) else "-"
        speed = f"{n['seconds'] / c['seconds']:.1f}" if ok(c) and ok(n) else "-"
        frac = lambda r: f"{r['extra_peak_bytes'] / (row['logits_gib'] * GIB):.3f}" if ok(r) else "-"  # noqa
        load = max(r.get("load_avg_1min", 0) for r in (f, c, n))
        lines.append(f"| {row['G']} | {row['T']} | {row['V']} | {row['logits_gib']:.2f} | {_cell(f, 's')} | "
                     f"{_cell(c, 's')} | {_cell(n, 's')} | {ratio} | {speed} | {_cell(c, 'm')} | {_cell(n, 'm')} "
                     f"| {frac(c)} | {frac(n)} | {load:.1f} |")
        for method, r in (("floor", f), ("chunked", c), ("naive", n)):
            if "skipped" in r or "error" in r:
                notes.append(f"- G={row['G']} T={row['T']} V={row['V']} {method}: "
                             f"{r.get('skipped') or r.get('error')}")
    if notes:
        lines += ["", "Not run:", *notes]
    p = report.get("paper")
    if p:
        r = p["result"]
        lines += ["", f"## Paper scale from hidden states: G={p['G']}, T={p['T']}, V={p['V']}, H={p['H']}", ""]
        if "seconds" in r:
            lines += [f"- time {r['seconds']:.1f} s (LM head applied per chunk in float32, which dominates; "
                      f"load {r['load_avg_1min']:.1f})",
                      f"- extra peak memory {r['extra_peak_bytes'] / GIB:.2f} GiB over inputs of "
                      f"{p['inputs_gib']:.2f} GiB (total about {p['inputs_gib'] + r['extra_peak_bytes'] / GIB:.1f}"
                      " GiB); the (G, T, V) float32 logits it never holds: "
                      f"{p['logits_gib']:.1f} GiB (extra / logits = "
                      f"{r['extra_peak_bytes'] / (p['logits_gib'] * GIB):.4f})"]
        else:
            lines.append(f"- {r}")
        lines.append(f"- the full-tensor form would need about {p['naive_estimate_gib']:.0f} GiB: the logits plus "
                     f"{report['naive_full_tensors']} more (G, T, V) float32 tensors alive at its peak (computed, "
                     "not run)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
