"""The ``twgrpo`` command line.

Each subcommand lives next to the code it drives: a module listed in ``COMMANDS`` provides
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when their subcommand
runs, so ``twgrpo invert`` does not pay for importing torch.

One way to fail: an expected failure (a file that is missing or malformed, a setting that cannot work, an
output folder holding another run, an unusable video: ``OSError``, ``ValueError``, ``VideoError``) is printed
as one line, ``twgrpo COMMAND: message`` (the message names the file, record and field), and the exit status
is 2, as for a usage error; ``--debug`` shows the traceback instead. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "invert": ("twgrpo_lib.data.inversion", "question-answer inversion of a NExT-GQA / format-A file"),
    "make-data": ("twgrpo_lib.data.synthetic.build", "build mini-CLEVRER, a synthetic CLEVRER-like video QA dataset"),
    "build-tiny": ("twgrpo_lib.models.tiny", "build the tiny offline Qwen2.5-VL (tokenizer, processor, model)"),
    "evaluate": ("twgrpo_lib.eval.evaluation",
                 "evaluate a checkpoint on a benchmark file, resumable (predictions + summary)"),
    "pretrain-vision": ("twgrpo_lib.train.vision_pretrain",
                        "dense vision pre-training of the tiny model's vision tower from simulator token labels"),
    "pretrain": ("twgrpo_lib.train.pretrain",
                 "visual pre-training curriculum of a tiny Qwen2.5-VL on mini-CLEVRER videos"),
    "bind": ("twgrpo_lib.train.binding", "language-model stage binding question words to video tokens (auxiliary "
                                         "heads), then the answers"),
    "sft": ("twgrpo_lib.train.sft", "supervised warm start on format-A items with reasoning targets"),
    "rescore": ("twgrpo_lib.eval.rescore", "score a predictions file again: strict / partial / per-option accuracy"),
    "ablate": ("twgrpo_lib.experiments.ablation",
               "the paper's ablation grid (algorithm x reward x template, seeds): train, evaluate, tabulate"),
    "train": ("twgrpo_lib.train.grpo", "GRPO / TW-GRPO training from a recipe (tiny_cpu, paper_7b, lora_single_gpu)"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twgrpo", description="TW-GRPO tutorial and reproducibility kit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = None if argv is None else next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        sub.add_argument("--debug", action="store_true", help="show the traceback of a failure")
        if wanted == name:  # only the chosen subcommand's module is imported
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    if args.command is None:
        build_parser([]).print_help()
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except Exception as err:
        if args.debug or not is_expected(err):
            raise
        print(f"twgrpo {args.command}: {one_line(err)}", file=sys.stderr)
        return 2


def is_expected(err: BaseException) -> bool:
    """Whether ``err`` is a failure the user can act on (bad file, setting, folder or video), not a bug."""
    from twgrpo_lib.data.video import VideoError

    return isinstance(err, (OSError, ValueError, VideoError))


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (its lines joined with "; "), or its type when it has none.

    >>> one_line(ValueError("a.json: record 3: field 'video': missing\\n  try --video-root"))
    "a.json: record 3: field 'video': missing; try --video-root"
    """
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(lines) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
