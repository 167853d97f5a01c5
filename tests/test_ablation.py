"""Ablation grid: rows, resumability, CSV / markdown writers, mean and std; training and evaluation stubbed.

The real training + evaluation path runs in notebook 05 (tests/test_notebooks.py)."""

import csv
import json
import math
import statistics

import pytest

from twgrpo_lib.experiments import ablation, ablation_report
from twgrpo_lib.experiments.ablation import ROW_BY_NAME, ROWS, AblationSettings, run_ablation
from twgrpo_lib.train.grpo import ALGOS, make_config, resolve_settings

# strict accuracy each stubbed run reports, per row (seed s adds s): distinct, so a mixed-up row shows; with
# swapped videos every run scores SWAP_DROP points less (the start 2 less)
STRICT = {"grpo_binary": 20.0, "grpo_soft": 30.0, "bnpo_soft": 35.0, "twgrpo_binary": 40.0, "twgrpo_soft": 60.0,
          "twgrpo_single": 25.0, "twgrpo_alive": 45.0}
SLOPE = {"twgrpo_binary": 2.0}  # points per seed (1 for the other rows)
OUTLIER = {("grpo_soft", 1): 40.0}  # one seed far off: a contrast whose interval includes 0
SWAP_DROP = 7.0
LOOKS = {"twgrpo_binary": False}  # this row scores the same with swapped videos


def strict(row: str, seed: int, swapped: bool = False) -> float:
    drop = SWAP_DROP if swapped and LOOKS.get(row, True) else 0.0
    return STRICT[row] + SLOPE.get(row, 1.0) * seed + OUTLIER.get((row, seed), 0.0) - drop


class Stubs:
    """A fake ``training.train`` / ``evaluation.run_evaluation`` pair that records its calls."""

    def __init__(self):
        self.trained, self.evaluated = [], []

    def train(self, model, data, out, *, recipe, progress, resume=False, **kw):
        self.trained.append((out, kw))
        self.resumed = getattr(self, "resumed", []) + ([out] if resume else [])
        out.mkdir(parents=True, exist_ok=resume)
        (out / "run.json").write_text("{}")  # what training.train claims its folder with
        lines = [{"step": s, "reward": 0.5 + 0.1 * s, "reward_std": 0.4 - 0.1 * s,
                  "completions/mean_length": 60 - 10 * s, "frac_reward_zero_std": 1.0 if s == 1 else 0.5}
                 for s in (1, 2, 3)]
        lines.append({"step": 3, "train_runtime": 1.0})  # end-of-training line: no reward
        (out / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        (out / "train_settings.json").write_text(json.dumps({"train_seconds": 2.5, "kw": kw}))
        return out

    def evaluate(self, settings, progress):
        self.evaluated.append(settings)
        if "/start/" in settings.out:
            base = 10.0 - 2.0 * settings.swapped_videos
        else:
            kw = json.loads((ablation.Path(settings.model) / "train_settings.json").read_text())["kw"]
            row = next(r for r in ROWS if (r.algo, r.reward, r.template, r.weight_fill)
                       == (kw["algo"], kw["reward"], kw["template"], kw.get("weight_fill", "uniform")))
            base = strict(row.name, kw["seed"], settings.swapped_videos)
        group = {"count": 10, "strict_accuracy": base, "partial_accuracy": base + 5, "format_rate": 90.0}
        return {"overall": group, "single": {**group, "strict_accuracy": base + 1}, "multi": {**group, "count": 4}}


def settings(tmp_path, **kw):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "val.json").write_text("[]")
    return AblationSettings(model=str(tmp_path / "model"), data=str(data), out=str(tmp_path / "out"), **kw)


def test_grid_rows_map_to_training_settings():
    assert [r.name for r in ROWS] == ["grpo_binary", "grpo_soft", "bnpo_soft", "twgrpo_binary", "twgrpo_soft",
                                      "twgrpo_single", "twgrpo_alive"]
    expected = {  # name: (loss_type, token weights, reward, template, weight fill)
        "grpo_binary": ("grpo", False, "binary", "mixed", "uniform"),
        "grpo_soft": ("grpo", False, "soft", "mixed", "uniform"),
        "bnpo_soft": ("bnpo", False, "soft", "mixed", "uniform"),
        "twgrpo_binary": ("bnpo", True, "binary", "mixed", "uniform"),
        "twgrpo_soft": ("bnpo", True, "soft", "mixed", "uniform"),
        "twgrpo_single": ("bnpo", True, "soft", "single", "uniform"),
        "twgrpo_alive": ("bnpo", True, "soft", "mixed", "alive")}
    s = AblationSettings("m", "d", "o", alpha=1.4)
    for row in ROWS:
        kw = s.run_settings(row, seed=3)["train"]
        resolved = resolve_settings(None, **kw)  # what training.train will run
        config = make_config(resolved, "unused")
        assert (config.loss_type, config.token_weighting, resolved["reward"], resolved["template"],
                config.weight_fill) == expected[row.name], row.name
        assert resolved["alpha"] == (1.4 if row.algo == "tw-grpo" else 1.0)
        assert resolved["seed"] == resolved["data_seed"] == 3
        assert resolved["per_device_train_batch_size"] == s.num_generations * s.prompts_per_step
    assert set(r.algo for r in ROWS) == set(ALGOS)
    assert {name: row.paper for name, row in ROW_BY_NAME.items() if row.paper} == {
        "grpo_binary": 41.1, "grpo_soft": 41.2, "twgrpo_binary": 42.6, "twgrpo_soft": 50.4, "twgrpo_single": 38.9}


def test_unknown_row_is_an_error():
    with pytest.raises(ValueError, match="no_such_row"):
        ablation.select_rows(["twgrpo_soft", "no_such_row"])


def test_grid_writes_results_and_resumes(tmp_path):
    stubs = Stubs()
    s = settings(tmp_path, seeds=(0, 1, 2))
    results, start = run_ablation(s, train_fn=stubs.train, eval_fn=stubs.evaluate, log=None)
    assert len(stubs.trained) == 21 and len(stubs.evaluated) == 44  # 7 rows x 3 seeds and the start, twice each
    assert (start["scores"]["strict_all"], start["scores"]["strict_swapped"]) == (10.0, 8.0)
    assert [(r["row"], r["seed"]) for r in results] == [(row.name, k) for row in ROWS for k in (0, 1, 2)]
    for r in results:
        assert r["scores"]["strict_all"] == strict(r["row"], r["seed"])
        assert r["scores"]["strict_swapped"] == strict(r["row"], r["seed"], swapped=True)
        assert [d["reward_std"] for d in r["dynamics"]] == pytest.approx([0.3, 0.2, 0.1])
        assert (tmp_path / "out" / r["row"] / f"seed{r['seed']}" / "result.json").exists()
    evaluated = {(e.out, e.swapped_videos) for e in stubs.evaluated}
    assert len(evaluated) == 44 and {e.data for e in stubs.evaluated} == {str(tmp_path / "data" / "val.json")}
    assert {e.out.rsplit("/", 1)[1] for e in stubs.evaluated if e.swapped_videos} == {"eval_swapped"}
    assert {(e.limit, e.batch_size, e.cpu_threads, e.swap_seed) for e in stubs.evaluated} == {(200, 200, 1, 0)}
    assert ablation.load_results(s.out) == results

    # a second call redoes nothing
    again = Stubs()
    assert run_ablation(s, train_fn=again.train, eval_fn=again.evaluate, log=None)[0] == results
    assert again.trained == [] and again.evaluated == []

    # a finished training whose evaluation did not finish is evaluated, not trained again
    (tmp_path / "out" / "grpo_soft" / "seed1" / "result.json").unlink()
    third = Stubs()
    resumed = run_ablation(s, train_fn=third.train, eval_fn=third.evaluate, log=None)[0][4]
    assert third.trained == [] and [e.out for e in third.evaluated] == [
        str(tmp_path / "out/grpo_soft/seed1/eval"), str(tmp_path / "out/grpo_soft/seed1/eval_swapped")]
    assert (resumed["row"], resumed["seed"], resumed["train_seconds"]) == ("grpo_soft", 1, 2.5)  # the trainer's time

    # an interrupted training (no train_settings.json) is resumed in its folder
    run = tmp_path / "out" / "twgrpo_single" / "seed2"
    (run / "result.json").unlink()
    (run / "train" / "train_settings.json").unlink()
    fourth = Stubs()
    run_ablation(s, train_fn=fourth.train, eval_fn=fourth.evaluate, log=None)
    assert [out for out, _ in fourth.trained] == [run / "train"] and fourth.resumed == [run / "train"]


def test_other_settings_are_refused_unless_forced(tmp_path):
    stubs = Stubs()
    run_ablation(settings(tmp_path, rows=("twgrpo_soft",), seeds=(0,)), train_fn=stubs.train,
                 eval_fn=stubs.evaluate, log=None)
    changed = settings(tmp_path, rows=("twgrpo_soft",), seeds=(0,), max_steps=99)
    with pytest.raises(ValueError, match=r"out: holds another run \(max_steps: 40 then, 99 now\)"):
        run_ablation(changed, train_fn=stubs.train, eval_fn=stubs.evaluate, log=None)
    more_seeds = Stubs()  # more seeds (or rows) extend the same grid
    run_ablation(settings(tmp_path, rows=("twgrpo_soft",), seeds=(0, 1)), train_fn=more_seeds.train,
                 eval_fn=more_seeds.evaluate, log=None)
    assert [out.parent.name for out, _ in more_seeds.trained] == ["seed1"]
    redo = Stubs()
    results, _ = run_ablation(changed, train_fn=redo.train, eval_fn=redo.evaluate, force=True, log=None)
    assert len(redo.trained) == 1 and redo.trained[0][1]["max_steps"] == 99
    assert results[0]["settings"]["train"]["max_steps"] == 99
    old = list(tmp_path.glob("out.old-*"))  # the first grid, moved aside whole
    assert len(old) == 1 and (old[0] / "twgrpo_soft" / "seed1" / "result.json").exists()


def test_csv_and_markdown(tmp_path):
    stubs = Stubs()
    s = settings(tmp_path, rows=("grpo_soft", "twgrpo_soft", "twgrpo_binary"), seeds=(0, 1, 2))
    results, start = run_ablation(s, train_fn=stubs.train, eval_fn=stubs.evaluate, log=None)
    with open(tmp_path / "out" / "results.csv") as f:
        lines = list(csv.DictReader(f))
    assert list(lines[0]) == list(ablation_report.CSV_COLUMNS)
    assert [(x["row"], int(x["seed"])) for x in lines] == [(r["row"], r["seed"]) for r in results]
    first = lines[0]
    assert float(first["strict_all"]) == STRICT["grpo_soft"]
    assert float(first["strict_single"]) == STRICT["grpo_soft"] + 1
    assert float(first["first_reward_std"]) == pytest.approx(0.3)
    assert float(first["last_reward_std"]) == pytest.approx(0.1)
    assert float(first["last_completion_length"]) == 30 and float(first["train_seconds"]) >= 0
    assert float(first["no_signal_steps"]) == pytest.approx(1 / 3)  # step 1: every group's rewards were equal

    md = (tmp_path / "out" / "results.md").read_text()
    sd = statistics.stdev([60.0, 61.0, 62.0])
    assert (f"| twgrpo_soft | {ROW_BY_NAME['twgrpo_soft'].label} | 3 | 61.0 ± {sd:.1f} | 54.0 ± {sd:.1f} "
            f"| 66.0 ± {sd:.1f} | 59.0 ± {sd:.1f} |") in md  # strict right, swapped, partial right, swapped
    assert "| 90.0 ± 0.0 | 33.3 ± 0.0 | 50.4 |" in md  # format, steps without signal, the paper
    assert "| start | the starting checkpoint, no RL | - | 10.0 | 8.0 | 15.0 | 13.0 |" in md
    assert "the same 10 validation questions for every run and the start" in md
    assert md.index("| grpo_soft |") < md.index("| twgrpo_binary |") < md.index("| twgrpo_soft |")  # grid order

    def interval(values):  # Student's t, 2 degrees of freedom: t_0.975 = 4.302653
        mean, half = statistics.fmean(values), 4.302653 * statistics.stdev(values) / math.sqrt(len(values))
        return f"{mean:+.1f} [{mean - half:+.1f}, {mean + half:+.1f}]"

    # gains over the start (right: 10, swapped: 8), and right minus swapped after RL, with their readings
    assert (f"| twgrpo_soft | {interval([50.0, 51.0, 52.0])} | {interval([45.0, 46.0, 47.0])} | +7.0 [+7.0, +7.0] "
            "| RL lifts accuracy; right beats swapped videos: the answers use the video |") in md
    assert (f"| twgrpo_binary | {interval([30.0, 32.0, 34.0])} | {interval([32.0, 34.0, 36.0])} | +0.0 [+0.0, +0.0] "
            "| RL lifts accuracy; right and swapped videos score alike: the answers do not use the video |") in md
    # contrasts: same-seed differences with t intervals, a verdict, the paper's beside; rows not run are left out
    assert (f"| soft vs binary reward (TW-GRPO) | {interval([20.0, 19.0, 18.0])} (pairs: 3) "
            "| twgrpo_soft higher: the interval excludes 0 | +7.8 (50.4 vs 42.6) |") in md
    assert (f"| TW-GRPO vs GRPO (soft reward) | {interval([30.0, -10.0, 30.0])} (pairs: 3) "
            "| no difference shown: the interval includes 0 | +9.2 (50.4 vs 41.2) |") in md
    assert "single-answer" not in md.split("| contrast")[1] and "still writing" not in md.split("| contrast")[1]
    assert "Time: 9 runs, per run training" in md


def test_mean_std_aggregation():
    assert ablation_report.mean_std([1.0, 2.0, 4.0]) == (statistics.fmean([1, 2, 4]), statistics.stdev([1, 2, 4]), 3)
    assert ablation_report.mean_std([7.0]) == (7.0, None, 1)
    assert ablation_report.mean_std([None, float("nan")]) == (None, None, 0)
    results = [{"row": "grpo_soft", "seed": k, "scores": {c: (10.0 * k if c == "strict_multi" else None)
                                                          for c, _, _ in ablation.SCORES}} for k in range(3)]
    table = ablation_report.aggregate(results)
    assert list(table) == ["grpo_soft"]
    assert table["grpo_soft"]["strict_multi"] == (10.0, 10.0, 3)
    assert table["grpo_soft"]["strict_all"] == (None, None, 0)  # an empty group stays empty, never 0


def test_bad_metrics_line_names_the_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"reward": 1.0, "step": 1}\n{"reward": \n')
    with pytest.raises(ValueError, match=r"metrics.jsonl, line 2: not JSON"):
        ablation.read_dynamics(path)


def test_cli_parses_into_settings(monkeypatch, tmp_path):
    from twgrpo_lib import cli

    seen = {}
    monkeypatch.setattr(ablation, "run_ablation", lambda s, force: seen.update(settings=s, force=force))
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.md").write_text("table\n")
    code = cli.main(["ablate", "--model", "m", "--data", "d", "--out", str(out), "--seeds", "4", "5", "6",
                     "--max-steps", "2", "--rows", "twgrpo_soft", "grpo_binary", "twgrpo_alive", "--eval-limit", "6",
                     "--swap-seed", "3", "--eval-cpu-threads", "2"])
    assert code == 0 and seen["force"] is False
    s = seen["settings"]
    assert (s.seeds, s.max_steps, s.eval_limit) == ((4, 5, 6), 2, 6)
    assert s.rows == ("twgrpo_soft", "grpo_binary", "twgrpo_alive")
    assert (s.swap_seed, s.eval_cpu_threads) == (3, 2)
