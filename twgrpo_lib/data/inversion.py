"""``twgrpo invert IN OUT``: question-answer inversion (``core.qa_inversion``, docs/method.md §4) of a file.

Reads a JSON list in format C (NExT-GQA) or A (``problem`` / ``solution``) with the kit's one reader
(``formats.read_records``), inverts it and writes a JSON list of format-A items: never over its input, and
over an existing file only with the same content or ``--force``, which moves the old file aside
(``run_folder.write_output_file``).

    twgrpo invert nextgqa_val.json nextgqa_val_qai.json --rules nextgqa --seed 0 --p 0.5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from twgrpo_lib.core.qa_inversion import STYLES, invert_dataset
from twgrpo_lib.data.arguments import fraction
from twgrpo_lib.data.formats import read_records
from twgrpo_lib.data.run_folder import write_output_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="JSON list in format C (NExT-GQA) or A (problem/solution)")
    parser.add_argument("output", type=Path, help="where to write the JSON list of format-A items")
    parser.add_argument("--rules", choices=STYLES, default="nextgqa",
                        help="negation rules: nextgqa (auxiliary as second word) or star (adds leading phrases)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--p", type=fraction(), default=0.5, help="probability of negating an item (paper: 0.5)")
    parser.add_argument("--no-random-drop", action="store_true",
                        help="keep every distractor (n-1 correct letters) instead of k uniform in {1..n-1}")
    parser.add_argument("--force", action="store_true",
                        help="write over an existing output file with other content (it is moved aside first)")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    items = read_records(args.input)  # failures (here and below) are one line from cli.main
    output, stats = invert_dataset(items, p=args.p, seed=args.seed, style=args.rules,
                                   random_drop=not args.no_random_drop, source=str(args.input))
    moved_to = write_output_file(args.output, json.dumps(output, indent=1, ensure_ascii=False) + "\n",
                                 inputs=[args.input], force=args.force)
    print(stats.summary())
    if moved_to is not None:
        print(f"moved the previous {args.output} aside to {moved_to}")
    print(f"wrote {len(output)} items to {args.output} in {time.perf_counter() - start:.2f} s")
    return 0
