"""The paper's benchmarks (what to download, the exact command) and comparing several checkpoints.

``evaluation`` runs one checkpoint on one file; this module finds the checkpoints a training run left,
evaluates each of them on the same file with the same settings (every run resumable) and puts the
summaries side by side.

>>> print(evaluate_command("Qwen/Qwen2.5-VL-7B-Instruct", "eval_mmvu.json", "/data/MMVU", "results/mmvu"))
twgrpo evaluate --model Qwen/Qwen2.5-VL-7B-Instruct --data eval_mmvu.json --video-root /data/MMVU --out results/mmvu
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from twgrpo_lib.data.formats import read_records
from twgrpo_lib.eval.evaluation import EvalSettings, run_evaluation

# Benchmarks of the paper's table (docs/method.md §6): annotation file, videos, and the kit's format.
BENCHMARKS = {
    "CLEVRER counterfactual": {
        "format": "D (raw CLEVRER annotations; multiple-choice questions become format A); "
                  "--question-type counterfactual",
        "annotations": "validation.json from clevrer.csail.mit.edu (CC0)",
        "videos": "video_validation.zip from clevrer.csail.mit.edu (5,000 videos of 5 s, 480x320)",
        "paper_questions": "9,238 (3,945 single-answer + 5,293 multi-answer)",
    },
    "MMVU (multiple choice)": {
        "format": "B (Video-R1 evaluation file)",
        "annotations": ("eval_mmvu.json of Video-R1 / TW-GRPO data/evaluation (625 questions; every 10th ships in "
                        "twgrpo_lib/data/samples/)"),
        "videos": "the MMVU validation videos (Hugging Face dataset yale-nlp/MMVU), re-rooted with --video-root",
        "paper_questions": "625",
    },
    "MVBench": {
        "format": "B", "annotations": "eval_mvbench.json of Video-R1 / TW-GRPO data/evaluation",
        "videos": "MVBench videos (Hugging Face dataset OpenGVLab/MVBench, several source collections)",
        "paper_questions": "4,000",
    },
    "TempCompass": {
        "format": "B", "annotations": "eval_tempcompass.json of Video-R1 (multiple-choice part)",
        "videos": "TempCompass videos (Hugging Face dataset lmms-lab/TempCompass)", "paper_questions": "-",
    },
    "Video-MME": {
        "format": "B", "annotations": "eval_videomme.json of Video-R1 / TW-GRPO data/evaluation",
        "videos": "Video-MME videos (Hugging Face dataset lmms-lab/Video-MME, about 900 videos, long ones included)",
        "paper_questions": "2,700",
    },
    "NExT-GQA": {
        "format": "C (NExT-GQA; options '(A) text')",
        "annotations": ("nextgqa_val.json (3,358 questions; every 10th ships in twgrpo_lib/data/samples/) or its QAI "
                        "version"),
        "videos": "NExT-QA videos (github.com/doc-doc/NExT-QA download links), re-rooted with --video-root",
        "paper_questions": "3,358",
    },
}


def evaluate_command(model: str, data: str, video_root: str | None, out: str, **options) -> str:
    """The ``twgrpo evaluate`` command line for these arguments (options: flag name -> value, True = flag)."""
    words = ["twgrpo", "evaluate", "--model", model, "--data", data]
    words += ["--video-root", video_root] if video_root else []
    words += ["--out", out]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        words += [flag] if value is True else [] if value in (False, None) else [flag, str(value)]
    return " ".join(shlex.quote(str(w)) for w in words)


def is_checkpoint(folder: Path) -> bool:
    """A folder the evaluator can load: model config, safetensors weights and a tokenizer."""
    return ((folder / "config.json").is_file() and any(folder.glob("*.safetensors"))
            and any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")))


def training_stage(name: str) -> int:
    """Order of a checkpoint in the training pipeline, from its folder name: base, warm start, GRPO, TW-GRPO.

    >>> sorted(["checkpoints/tw-grpo", "checkpoints/grpo", "tiny-base", "checkpoints/sft"], key=training_stage)
    ['tiny-base', 'checkpoints/sft', 'checkpoints/grpo', 'checkpoints/tw-grpo']
    """
    name = name.lower()
    for rank, words in enumerate((("base",), ("sft", "warm"), ("tw-grpo", "tw_grpo", "twgrpo"), ("grpo",))):
        if any(word in name for word in words):
            return (0, 1, 3, 2)[rank]
    return 4


def find_checkpoints(root: str | Path) -> dict[str, str]:
    """Loadable checkpoints under ``root`` by relative folder name, in training order (``training_stage``).

    Intermediate ``checkpoint-N`` folders are skipped when their parent folder holds a final model.
    """
    root = Path(root)
    if not root.is_dir():
        return {}
    found = sorted({p.parent for p in root.rglob("config.json") if is_checkpoint(p.parent)})
    keep = [f for f in found if not (re.fullmatch(r"checkpoint-\d+", f.name) and f.parent in found)]
    names = {str(f.relative_to(root)) if f != root else root.name: str(f) for f in keep}
    return {name: names[name] for name in sorted(names, key=lambda n: (training_stage(n), n))}


def drop_seen_videos(data_file: str | Path, train_file: str | Path, out_file: str | Path) -> tuple[int, int]:
    """Write the records of a format-A ``data_file`` whose video is not used by ``train_file`` to ``out_file``.

    Videos are matched by file name (mini-CLEVRER scenes depend only on the seed and the video index, so two
    builds share a video exactly when they share its name). Returns (records kept, records dropped).
    """
    records = read_records(data_file)
    seen = {Path(r["video"]).name for r in read_records(train_file)}
    kept = [r for r in records if Path(r["video"]).name not in seen]
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    Path(out_file).write_text(json.dumps(kept, indent=1) + "\n")
    return len(kept), len(records) - len(kept)


def evaluate_checkpoints(checkpoints: dict[str, str], data: str, out_root: str | Path, progress: bool = True,
                         **settings) -> dict[str, dict]:
    """Evaluate every checkpoint on ``data`` with the same settings; output in ``out_root/<name>``.

    Each run resumes from its own folder, so calling again only scores what is missing.
    """
    summaries = {}
    for name, path in checkpoints.items():
        out = Path(out_root) / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        run = EvalSettings(model=path, data=str(data), out=str(out), **settings)
        summaries[name] = run_evaluation(run, progress=progress)
    return summaries


def evaluate_right_and_swapped(checkpoints: dict[str, str], data: str, out_root: str | Path, progress: bool = True,
                               **settings) -> tuple[dict[str, dict], dict[str, dict]]:
    """``evaluate_checkpoints`` twice, the grounding control: (summaries with each question's own video, in
    ``out_root/right``; summaries with the video of another question, ``--swapped-videos``, in ``out_root/swapped``)."""
    right = evaluate_checkpoints(checkpoints, data, Path(out_root) / "right", progress, **settings)
    swapped = evaluate_checkpoints(checkpoints, data, Path(out_root) / "swapped", progress,
                                   **{**settings, "swapped_videos": True})
    return right, swapped


def grounding_table(right: dict[str, dict], swapped: dict[str, dict]):
    """One row per checkpoint: strict and partial accuracy with the right and with swapped videos, and the gap.
    A model that answers from the video loses accuracy with a swapped one; one that ignores it scores the same.

    >>> s = lambda strict: {"overall": {"count": 4, "strict_accuracy": strict, "partial_accuracy": strict}}
    >>> grounding_table({"rl": s(50.0)}, {"rl": s(25.0)}).loc["rl", ["strict right %", "right - swapped"]].tolist()
    [50.0, 25.0]
    """
    import pandas as pd

    rows = {}
    for name, r in right.items():
        w = swapped[name]["overall"]
        rows[name] = {"questions": r["overall"]["count"], "strict right %": r["overall"]["strict_accuracy"],
                      "strict swapped %": w["strict_accuracy"],
                      "right - swapped": r["overall"]["strict_accuracy"] - w["strict_accuracy"],
                      "partial right %": r["overall"]["partial_accuracy"], "partial swapped %": w["partial_accuracy"]}
    return pd.DataFrame.from_dict(rows, orient="index")


def comparison_table(summaries: dict[str, dict]):
    """One row per checkpoint: strict and partial accuracy (overall, single, multi), per-option, format, errors.

    >>> s = {"overall": {"count": 4, "strict_accuracy": 50.0, "partial_accuracy": 62.5, "format_rate": 100.0},
    ...      "single": {"count": 2, "strict_accuracy": 50.0, "partial_accuracy": 50.0},
    ...      "multi": {"count": 2, "strict_accuracy": 50.0, "partial_accuracy": 75.0},
    ...      "per_option_accuracy": 80.0, "errors": 0}
    >>> comparison_table({"base": s}).loc["base", ["strict %", "multi partial %"]].tolist()
    [50.0, 75.0]
    """
    import pandas as pd

    rows = {}
    for name, s in summaries.items():
        rows[name] = {
            "questions": s["overall"]["count"], "strict %": s["overall"]["strict_accuracy"],
            "partial %": s["overall"]["partial_accuracy"],
            "single strict %": s["single"]["strict_accuracy"], "multi strict %": s["multi"]["strict_accuracy"],
            "multi partial %": s["multi"]["partial_accuracy"], "per-option %": s.get("per_option_accuracy"),
            "format %": s["overall"].get("format_rate"), "errors": s.get("errors", 0),
        }
    return pd.DataFrame.from_dict(rows, orient="index")

