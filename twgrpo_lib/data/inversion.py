"""``twgrpo invert IN OUT``: question-answer inversion (``core.qa_inversion``, docs/method.md §4) of a file.

Reads a JSON list in format C (NExT-GQA) or A (``problem`` / ``solution``) with the kit's one reader
(``formats.read_records``), inverts it and writes a JSON list of format-A items.

    twgrpo invert nextgqa_val.json nextgqa_val_qai.json --rules nextgqa --seed 0 --p 0.5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from twgrpo_lib.core.qa_inversion import STYLES, invert_dataset
from twgrpo_lib.data.formats import read_records


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="JSON list in format C (NExT-GQA) or A (problem/solution)")
    parser.add_argument("output", type=Path, help="where to write the JSON list of format-A items")
    parser.add_argument("--rules", choices=STYLES, default="nextgqa",
                        help="negation rules: nextgqa (auxiliary as second word) or star (adds leading phrases)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--p", type=float, default=0.5, help="probability of negating an item (paper: 0.5)")
    parser.add_argument("--no-random-drop", action="store_true",
                        help="keep every distractor (n-1 correct letters) instead of k uniform in {1..n-1}")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    try:
        items = read_records(args.input)
        output, stats = invert_dataset(items, p=args.p, seed=args.seed, style=args.rules,
                                       random_drop=not args.no_random_drop, source=str(args.input))
    except (OSError, ValueError) as err:
        print(f"twgrpo invert: {err}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(output, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(stats.summary())
    print(f"wrote {len(output)} items to {args.output} in {time.perf_counter() - start:.2f} s")
    return 0
