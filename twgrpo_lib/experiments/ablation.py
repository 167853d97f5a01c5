"""``twgrpo ablate``: the paper's ablations (docs/method.md §6) as a grid of training + evaluation runs.

Every row starts from the same checkpoint, trains on the same data with ``training.train`` and is scored on
the same held-out questions with ``evaluation.run_evaluation`` (one scorer: ``metrics``), once per seed, twice:
with each question's own video and with the video of another question (``--swapped-videos``, the grounding
control: RL that only sharpens answer priors gains as much with a swapped video). The start is scored the same
way, once.

=================  =========  ======  ========  ==============================================================
row                algo       reward  template  what it isolates
=================  =========  ======  ========  ==============================================================
grpo_binary        grpo       binary  mixed     the paper's GRPO baseline
grpo_soft          grpo       soft    mixed     the soft reward without token weights
bnpo_soft          bnpo       soft    mixed     token-level aggregation with alpha = 1 (aggregation alone)
twgrpo_binary      tw-grpo    binary  mixed     token weights without the soft reward
twgrpo_soft        tw-grpo    soft    mixed     TW-GRPO, the paper's method
twgrpo_single      tw-grpo    soft    single    TW-GRPO trained on single-answer questions only
twgrpo_alive       tw-grpo    soft    mixed     beyond the paper: the divergence over the answers still writing
=================  =========  ======  ========  ==============================================================

Layout of ``OUT``: ``OUT/<row>/seed<k>/train`` (model, ``metrics.jsonl``), ``OUT/<row>/seed<k>/eval`` and
``eval_swapped`` (predictions, summary) and ``OUT/<row>/seed<k>/result.json``, written last; ``OUT/results.csv``
(one line per run) and ``OUT/results.md`` (means over seeds, gains over the start and the paper's contrasts as
same-seed differences with 95 % t intervals, the paper's numbers beside; written by ``ablation_report``).
``OUT`` belongs to one grid (``data.run_folder``: model, data content and every setting but the rows and seeds,
which may grow): another grid there is refused unless ``force``, which moves the old folder aside (nothing is
deleted). A run whose ``result.json`` exists is not redone; a run whose
training finished but whose evaluation did not resumes at the evaluation, which resumes by question; an
interrupted training resumes (``train(..., resume=True)``: from its last checkpoint, or from step 0 when it
saved none, the grid's default).

Differences from the paper's ablations:

1. Every number here is a mean over seeds with its sample standard deviation; the paper reports one run each.
2. The seed sets the model's sampling and the data order (``seed`` and ``data_seed``); the paper fixes
   ``data_seed = 42``. Evaluation decoding is the paper's (temperature 0.1, top_p 0.001) with one fixed seed.
3. The "bnpo, alpha = 1" row is not in the paper: it separates the change of aggregation (``grpo`` ->
   ``bnpo``) from the token weights, which the paper's TW-GRPO changes together (docs/method.md §1). Nor is
   ``twgrpo_alive`` (``weight_fill="alive"``), nor the swapped-video scores.
4. The paper's numbers come from a 7B model on CLEVRER; the CPU default is a tiny model on mini-CLEVRER.
   Compare the direction and size of the differences between rows, not the levels.
5. The score is over the first ``eval_limit`` validation questions of every type; the paper's ablation
   scores CLEVRER's counterfactual validation questions only (pass such a file as ``eval_data``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from twgrpo_lib.data.arguments import at_least
from twgrpo_lib.data.run_folder import RUN_FILE, claim, file_sha256, model_identity
from twgrpo_lib.eval.evaluation import EvalSettings, run_evaluation
from twgrpo_lib.experiments.ablation_report import markdown_table, write_csv
from twgrpo_lib.experiments.grid import DYNAMICS, ROW_BY_NAME, ROWS, SCORES, SWAPPED_SCORES, Row
from twgrpo_lib.train.grpo import resolve_settings, train

RESULT = "result.json"


@dataclass
class AblationSettings:
    """Every setting of a grid; ``run_settings`` of a row and seed must match a finished run to reuse it."""

    model: str  # the warm-started checkpoint every row starts from
    data: str  # a mini-CLEVRER folder (train.json, val.json) or a training file in format A-D
    out: str
    eval_data: str | None = None  # default: DATA/val.json of a mini-CLEVRER folder
    video_root: str | None = None  # video root of eval_data (default: the mini-CLEVRER folder)
    rows: tuple[str, ...] = tuple(row.name for row in ROWS)
    seeds: tuple[int, ...] = (0, 1, 2)
    recipe: str = "tiny_cpu"  # training recipe; the options below override it
    # CPU budget: 7 rows x 3 seeds within 30 min on 2 shared cores (measured: benchmarks/results/ablations.md)
    max_steps: int = 40
    num_generations: int = 4
    prompts_per_step: int = 1
    max_completion_length: int = 192  # mini-CLEVRER reasoning targets: 104 tokens on average, at most 168
    learning_rate: float | None = None  # None: the recipe's
    alpha: float = 1.7  # token-weight ceiling of the tw-grpo rows (docs/method.md §2)
    max_items: int | None = None  # train on the first N items after the template filter
    eval_limit: int | None = 200  # first N evaluation questions, the same for every run and the start (None: all)
    eval_max_new_tokens: int = 192  # the training cap: the start's completions reach it (benchmarks/results)
    eval_batch_size: int = 200  # every question in one generate call: the same answers, fewer steps
    eval_prompt: str = "train"  # evaluation prompt: "train" (the tiny model saw only it) or "auto" (the paper's)
    swap_seed: int = 0  # the swapped-video derangement (evaluation --swap-seed)
    eval_cpu_threads: int | None = 1  # torch threads of the evaluations on CPU (one: fastest on a busy 2-core machine)
    train_overrides: dict = field(default_factory=dict)  # further training.train keyword arguments

    def run_settings(self, row: Row, seed: int) -> dict:
        """What makes a run: the training keyword arguments and the evaluation settings (paths excluded)."""
        train = {"algo": row.algo, "reward": row.reward, "template": row.template, "seed": seed,
                 "data_seed": seed, "max_steps": self.max_steps, "num_generations": self.num_generations,
                 "per_device_train_batch_size": self.num_generations * self.prompts_per_step,
                 "max_completion_length": self.max_completion_length, "save_strategy": "no",
                 **({"alpha": self.alpha} if row.algo == "tw-grpo" else {}),
                 **({"weight_fill": row.weight_fill} if row.weight_fill != "uniform" else {}),
                 **({"learning_rate": self.learning_rate} if self.learning_rate is not None else {}),
                 **({"max_items": self.max_items} if self.max_items is not None else {}),
                 **self.train_overrides}
        evaluate = {"limit": self.eval_limit, "max_new_tokens": self.eval_max_new_tokens, "prompt": self.eval_prompt,
                    "swap_seed": self.swap_seed}
        return {"model": self.model, "recipe": self.recipe, "train": train, "evaluate": evaluate}


# settings of a grid that do not change its numbers: left out of its identity (rows and seeds may be added)
NOT_IDENTITY = ("out", "rows", "seeds", "video_root", "eval_batch_size", "eval_cpu_threads")


def data_identity(path: str | os.PathLike | None) -> dict | None:
    """The content of a data file, or of a mini-CLEVRER folder's ``train.json`` / ``val.json`` (sha256)."""
    if path is None:
        return None
    path = Path(path)
    files = [path / "train.json", path / "val.json"] if path.is_dir() else [path]
    return {f.name: file_sha256(f) if f.is_file() else None for f in files}


def grid_identity(settings: AblationSettings) -> dict:
    """What makes a grid (``OUT/run.json``): the starting model, the data's content and the settings."""
    kept = {k: v for k, v in dataclasses.asdict(settings).items() if k not in NOT_IDENTITY}
    return {**kept, "model": model_identity(settings.model), "data": data_identity(settings.data),
            "eval_data": data_identity(settings.eval_data)}


def select_rows(names: Sequence[str]) -> list[Row]:
    """Rows by name, in the grid's order; an unknown name is an error.

    >>> [row.algo for row in select_rows(["twgrpo_soft", "grpo_binary"])]
    ['grpo', 'tw-grpo']
    """
    unknown = [n for n in names if n not in ROW_BY_NAME]
    if unknown:
        raise ValueError(f"unknown ablation row(s) {unknown}; choose from {list(ROW_BY_NAME)}")
    return [row for row in ROWS if row.name in set(names)]


def run_dir(out: str | os.PathLike, row: str, seed: int) -> Path:
    return Path(out) / row / f"seed{seed}"


def eval_location(settings: AblationSettings) -> tuple[str, str | None]:
    """(evaluation file, its video root): a mini-CLEVRER folder's ``val.json`` unless ``eval_data`` is given."""
    if settings.eval_data is not None:
        return settings.eval_data, settings.video_root
    data = Path(settings.data)
    if not (data.is_dir() and (data / "val.json").exists()):
        raise FileNotFoundError(f"{data}: not a mini-CLEVRER folder with val.json; pass eval_data (--eval-data)")
    return os.fspath(data / "val.json"), settings.video_root or os.fspath(data)


def read_dynamics(metrics_path: str | os.PathLike) -> list[dict]:
    """Per-step training dynamics from a ``metrics.jsonl``: step, reward, reward_std, completion_length.

    Lines without a reward (the end-of-training summary) are skipped; a bad line is an error naming it.
    """
    path = Path(metrics_path)
    steps = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {number}: not JSON ({err})") from None
        if "reward" in record:
            steps.append({"step": record.get("step"), **{c: record.get(k) for c, k in DYNAMICS}})
    return steps


def finished_result(done: Path, wanted: dict) -> dict | None:
    """The result recorded in ``done`` (a run's or the start's), None when there is none yet; recorded with
    other settings is an error (the grid's run.json rules this out unless a file was edited)."""
    if not done.exists():
        return None
    result = json.loads(done.read_text())
    if result.get("settings") != wanted:
        raise ValueError(f"{done}: finished with other settings ({result.get('settings')} != {wanted}); "
                         "use another --out, or --force to move the grid aside and start over")
    return result


def run_one(row: Row, seed: int, settings: AblationSettings, *, train_fn: Callable, eval_fn: Callable) -> dict:
    """Train and evaluate one (row, seed), or read its ``result.json`` if it is finished; returns the result.

    ``train_fn(model, data, out, recipe=..., progress=False, **train_settings)`` is ``training.train``;
    ``eval_fn(EvalSettings, progress=False) -> summary`` is ``evaluation.run_evaluation``, called with the
    run's own videos into ``eval`` and with swapped videos into ``eval_swapped``.
    """
    folder = run_dir(settings.out, row.name, seed)
    wanted = settings.run_settings(row, seed)
    done = folder / RESULT
    if (result := finished_result(done, wanted)) is not None:
        return result
    train_dir = folder / "train"
    if not (train_dir / "train_settings.json").exists():  # written by training.train after the final save
        start = time.perf_counter()
        folder.mkdir(parents=True, exist_ok=True)
        interrupted = {"resume": True} if (train_dir / RUN_FILE).exists() else {}
        with open(folder / "train.log", "a") as log, contextlib.redirect_stdout(log):  # the trainer's per-step prints
            train_fn(settings.model, settings.data, train_dir, recipe=settings.recipe, progress=False,
                     **interrupted, **wanted["train"])
        train_seconds = time.perf_counter() - start
    else:
        train_seconds = json.loads((train_dir / "train_settings.json").read_text()).get("train_seconds", 0.0)
    evaluated = evaluate_both(settings, train_dir, folder, eval_fn)
    result = {"row": row.name, "seed": seed, "algo": row.algo, "reward": row.reward, "template": row.template,
              "weight_fill": row.weight_fill, "settings": wanted, **evaluated,
              "dynamics": read_dynamics(train_dir / "metrics.jsonl"), "train_seconds": round(train_seconds, 1),
              "load_average": round(os.getloadavg()[0], 2)}
    _write_json(done, result)
    return result


def evaluate_both(settings: AblationSettings, model: Path, folder: Path, eval_fn: Callable) -> dict:
    """Scores of ``model`` with the right videos (``folder/eval``) and swapped ones (``folder/eval_swapped``),
    the question count and the seconds each evaluation took."""
    found: dict = {}
    for name, swapped in (("eval", False), ("eval_swapped", True)):
        start = time.perf_counter()
        found[name] = eval_fn(eval_settings(settings, model, folder / name, swapped=swapped), progress=False)
        found[f"{name}_seconds"] = round(time.perf_counter() - start, 1)
    if found["eval"]["overall"]["count"] != found["eval_swapped"]["overall"]["count"]:
        raise RuntimeError(f"{folder}: {found['eval']['overall']['count']} questions scored with the right videos, "
                           f"{found['eval_swapped']['overall']['count']} with swapped ones")
    return {"scores": scores(found["eval"], found["eval_swapped"]), "questions": found["eval"]["overall"]["count"],
            "eval_seconds": found["eval_seconds"], "eval_swapped_seconds": found["eval_swapped_seconds"]}


def evaluate_start(settings: AblationSettings, *, eval_fn: Callable) -> dict:
    """Scores of the starting checkpoint itself (no RL), evaluated once into ``OUT/start``; reused when done."""
    folder = Path(settings.out) / "start"
    done = folder / RESULT
    wanted = {"model": settings.model, **settings.run_settings(ROWS[0], 0)["evaluate"]}
    if (result := finished_result(done, wanted)) is not None:
        return result
    result = {"settings": wanted, **evaluate_both(settings, Path(settings.model), folder, eval_fn),
              "load_average": round(os.getloadavg()[0], 2)}
    _write_json(done, result)
    return result


def eval_settings(settings: AblationSettings, model: Path, out: Path, swapped: bool = False):
    """The ``EvalSettings`` of every evaluation of the grid: same questions, prompt and decoding (the paper's),
    and the video settings of the training recipe (a model is scored on frames like those it was trained on);
    ``swapped``: each question shown another's video."""
    video = resolve_settings(settings.recipe)
    eval_file, video_root = eval_location(settings)
    return EvalSettings(model=os.fspath(model), data=eval_file, out=os.fspath(out), video_root=video_root,
                        limit=settings.eval_limit, max_new_tokens=settings.eval_max_new_tokens,
                        batch_size=settings.eval_batch_size, prompt=settings.eval_prompt,
                        fps=video["video_fps"], max_frames=video["video_max_frames"], frame_sampling="fps",
                        max_pixels=video["video_max_pixels"], swapped_videos=swapped, swap_seed=settings.swap_seed,
                        cpu_threads=settings.eval_cpu_threads)


def scores(summary: dict, swapped: dict | None = None) -> dict[str, float | None]:
    """The ``SCORES`` columns of a ``metrics.summarize`` summary, and the ``SWAPPED_SCORES`` of ``swapped``.

    >>> s = {"overall": {"strict_accuracy": 50.0, "partial_accuracy": 75.0, "format_rate": 100.0},
    ...      "single": {"strict_accuracy": 100.0, "partial_accuracy": 100.0},
    ...      "multi": {"strict_accuracy": 0.0, "partial_accuracy": 50.0}}
    >>> scores(s)["partial_multi"], scores(s)["strict_all"], scores(s, s)["strict_swapped"]
    (50.0, 50.0, 50.0)
    """
    found = {c: summary[g][m] for c, g, m in SCORES}
    return found if swapped is None else {**found, **{c: swapped[g][m] for c, g, m in SWAPPED_SCORES}}


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def run_ablation(settings: AblationSettings, *, train_fn: Callable | None = None, eval_fn: Callable | None = None,
                 force: bool = False, log: Callable[[str], None] | None = print) -> tuple[list[dict], dict]:
    """Run (or resume) the grid; write ``OUT/results.csv`` and ``OUT/results.md``.

    Returns (one result per run, in grid order; ``evaluate_start``'s result for the starting checkpoint).
    """
    train_fn = train if train_fn is None else train_fn
    eval_fn = run_evaluation if eval_fn is None else eval_fn
    if not settings.seeds:
        raise ValueError("no seeds given")
    rows = select_rows(settings.rows)
    out = Path(settings.out)
    with claim(out, "ablate", grid_identity(settings), force=force):
        (out / "ablation_settings.json").write_text(json.dumps(dataclasses.asdict(settings), indent=1) + "\n")
        start_result = evaluate_start(settings, eval_fn=eval_fn)
        if log:
            log(f"start (no RL): strict {start_result['scores']['strict_all']} (swapped videos "
                f"{start_result['scores']['strict_swapped']}), partial {start_result['scores']['partial_all']}")
        results = []
        for row in rows:
            for seed in settings.seeds:
                start = time.perf_counter()
                result = run_one(row, seed, settings, train_fn=train_fn, eval_fn=eval_fn)
                results.append(result)
                if log:
                    log(f"{row.name} seed {seed}: strict {result['scores']['strict_all']} (swapped videos "
                        f"{result['scores']['strict_swapped']}), partial {result['scores']['partial_all']} "
                        f"({time.perf_counter() - start:.0f} s)")
                write_csv(results, out / "results.csv")  # kept current, so a long grid can be watched
        (out / "results.md").write_text(markdown_table(results, start_result,
                                                       start_label=checkpoint_label(settings.model)))
    return results, start_result


def checkpoint_label(model: str | os.PathLike) -> str:
    """A checkpoint for a report: its folder name and the sha256 (first 12 digits) of each weight file, so a
    table says which weights it measured (``sha256sum model.safetensors`` gives the same digits).

    >>> checkpoint_label("Qwen/Qwen2.5-VL-7B-Instruct")
    '`Qwen/Qwen2.5-VL-7B-Instruct`'
    """
    path = Path(model)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    digests = ", ".join(f"{f.name} sha256 {file_sha256(f)[:12]}" for f in files)
    return f"`{path.name}` ({digests})" if digests else f"`{os.fspath(model)}`"


def load_results(out: str | os.PathLike) -> list[dict]:
    """Every finished run's ``result.json`` under ``out``, in grid order."""
    found = [json.loads(p.read_text()) for p in Path(out).glob(f"*/seed*/{RESULT}")]
    order = {row.name: i for i, row in enumerate(ROWS)}
    return sorted(found, key=lambda r: (order.get(r["row"], len(order)), r["seed"]))


# --- command line ------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = AblationSettings("", "", "")
    parser.add_argument("--model", required=True, help="warm-started checkpoint every row starts from")
    parser.add_argument("--data", required=True, help="mini-CLEVRER folder (train.json, val.json) or a training file")
    parser.add_argument("--out", required=True, help="output folder: results.csv, results.md, <row>/seed<k>/")
    parser.add_argument("--eval-data", default=None, help="evaluation file (default: DATA/val.json)")
    parser.add_argument("--video-root", default=None, help="video root of the evaluation file")
    parser.add_argument("--rows", nargs="+", default=list(d.rows), choices=list(ROW_BY_NAME), help="rows to run")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(d.seeds), help="seeds (at least 3 for a std)")
    parser.add_argument("--recipe", default=d.recipe, help="training recipe the options below override")
    parser.add_argument("--max-steps", type=at_least(1), default=d.max_steps, help="training steps per run")
    parser.add_argument("--num-generations", type=at_least(2), default=d.num_generations,
                        help="G, completions per prompt")
    parser.add_argument("--prompts-per-step", type=at_least(1), default=d.prompts_per_step, help="prompts per step")
    parser.add_argument("--max-completion-length", type=at_least(1), default=d.max_completion_length,
                        help="tokens per training completion at most")
    parser.add_argument("--lr", dest="learning_rate", type=float, default=None, help="learning rate (recipe's)")
    parser.add_argument("--alpha", type=float, default=d.alpha, help="token-weight ceiling of tw-grpo rows")
    parser.add_argument("--max-items", type=at_least(1), default=None, help="train on the first N items only")
    parser.add_argument("--eval-limit", type=at_least(1), default=d.eval_limit, help="first N evaluation questions")
    parser.add_argument("--eval-max-new-tokens", type=at_least(1), default=d.eval_max_new_tokens,
                        help="answer length cap")
    parser.add_argument("--eval-batch-size", type=at_least(1), default=d.eval_batch_size,
                        help="questions per generate call")
    parser.add_argument("--eval-prompt", choices=["train", "auto", "clevrer"], default=d.eval_prompt,
                        help="evaluation prompt: train (the tiny model saw only the training prompt) or the paper's")
    parser.add_argument("--swap-seed", type=int, default=d.swap_seed, help="seed of the swapped-video derangement")
    parser.add_argument("--eval-cpu-threads", type=at_least(1), default=d.eval_cpu_threads,
                        help="torch threads of the evaluations on CPU")
    parser.add_argument("--force", action="store_true",
                        help="start over: move the folder OUT (another grid) aside to OUT.old-<time>")


def run(args: argparse.Namespace) -> int:
    names = {f.name for f in dataclasses.fields(AblationSettings)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values["rows"], values["seeds"] = tuple(values["rows"]), tuple(values["seeds"])
    settings = AblationSettings(**values)
    start = time.perf_counter()
    run_ablation(settings, force=args.force)
    print((Path(settings.out) / "results.md").read_text())
    print(f"wrote {Path(settings.out) / 'results.csv'} and results.md in {time.perf_counter() - start:.0f} s",
          file=sys.stderr)
    return 0
