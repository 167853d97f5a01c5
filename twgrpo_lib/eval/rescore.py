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

from twgrpo_lib.core.answers import STYLES
from twgrpo_lib.eval.metrics import format_table, summarize


def load_records(path: str | Path) -> tuple[list, list[int]]:
    """Records of a JSON list or JSON-lines file and the line number where each starts.

    Blank lines of a JSON-lines file are skipped; a malformed line raises ``ValueError`` naming the file and
    the line number.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: line {err.lineno}: malformed JSON: {err.msg}") from None
        if not isinstance(records, list):
            raise ValueError(f"{path}: expected a JSON list of records")
        return records, []
    if stripped.startswith("{") and "\n" in stripped.rstrip():
        try:  # one pretty-printed object, e.g. {"results": [...]}
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, dict):
            if isinstance(whole.get("results"), list):
                return whole["results"], []
            raise ValueError(f"{path}: a single JSON object without a 'results' list; expected a JSON list "
                             "or one record per line")
    records, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: line {number}: malformed JSON line: {err.msg} "
                             f"(column {err.colno})") from None
        lines.append(number)
    return records, lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="predictions: JSON list or JSON lines")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    parser.add_argument("--style", choices=STYLES, default="eval",
                        help="answer rule without <answer> tags: 'eval' = the paper's evaluation scripts "
                             "(default, reproduces its numbers), 'train' = the training reward")
    parser.add_argument("--lenient", action="store_true",
                        help="map '(A)', 'A.', 'a', 'Option A' to letters (analysis only, not the paper's rule)")


def run(args: argparse.Namespace) -> int:
    try:
        records, lines = load_records(args.file)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = summarize(records, source=str(args.file), lines=lines or None,
                                style=args.style, lenient=args.lenient)
    except (OSError, ValueError) as err:
        print(f"twgrpo rescore: {err}", file=sys.stderr)
        return 1
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    if args.json:
        print(json.dumps({"file": str(args.file), **summary}, indent=2, ensure_ascii=False))
    else:
        print(f"{args.file}")
        print(format_table(summary))
    return 0
