"""``twgrpo rescore FILE``: score a predictions file again with the kit's answer parser.

Reads a JSON list or JSON lines (detected from the content), such as the kit's own predictions (docs/formats.md §E)
or the evaluation logs published with the paper (JSON lines with ``question``, ``ground_truth``,
``model_output``, ``extracted_answer``, ``accuracy_score``, ``format_score``, ...; a ``.json`` name despite
being JSON lines). A JSON object whose ``results`` entry is a list is read as that list. Prints the table of
``metrics.format_table``, or the summary as JSON with ``--json``.

    twgrpo rescore logs/checkpoint-500_eval_mmvu_eval.json
    twgrpo rescore predictions.jsonl --json > summary.json
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from twgrpo_lib.core.answers import DEFAULT_RULE, RULES
from twgrpo_lib.data.formats import read_records
from twgrpo_lib.eval.metrics import format_table, summarize


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="predictions: JSON list or JSON lines")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    parser.add_argument("--answer-rule", choices=RULES, default=DEFAULT_RULE,
                        help="answer without <answer> tags: 'whole' = the whole completion (docs/method.md §3, "
                             "default); 'phrase' = an 'Answer: X' phrase or nothing (analysis only)")
    parser.add_argument("--lenient", action="store_true",
                        help="map '(A)', 'A.', 'a', 'Option A' to letters (analysis only, not the paper's rule)")


def run(args: argparse.Namespace) -> int:
    records, lines = read_records(args.file, with_lines=True)  # a bad or empty file: one line from cli.main
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = summarize(records, source=str(args.file), lines=lines or None,
                            rule=args.answer_rule, lenient=args.lenient)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    if args.json:
        print(json.dumps({"file": str(args.file), **summary}, indent=2, ensure_ascii=False))
    else:
        print(f"{args.file}")
        print(format_table(summary))
    return 0
