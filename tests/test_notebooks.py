"""Notebooks: committed clean, titled and planned consistently, every one executes with the CI parameters, and
the headline numbers each records are checked: the CI run's, and the published default run's in the README."""

import json
import math
import re
from pathlib import Path

import pytest
import yaml

from twgrpo_lib.data import sample_path
from twgrpo_lib.data.formats import read_records
from twgrpo_lib.eval import metrics
from twgrpo_lib.tutorial import headline
from twgrpo_lib.tutorial.runner import (
    CI_PARAMETERS,
    NOTEBOOK_NAME,
    PUBLISHED_RECORDS,
    README,
    REPO_ROOT,
    declared_parameters,
    list_notebooks,
    load_parameter_file,
    notebook_title,
    readme_table,
    run_all,
)

NOTEBOOKS = list_notebooks()
CI_TABLE = load_parameter_file(CI_PARAMETERS, NOTEBOOKS)
MAX_LINE = 120
EXAMPLE_PREDICTIONS = sample_path("example_predictions.jsonl")
TINY_RECIPE = yaml.safe_load((REPO_ROOT / "twgrpo_lib" / "recipes" / "tiny_cpu.yaml").read_text())


def code_lines(notebook: Path):
    """(cell index, line) of every line of every code cell."""
    for index, cell in enumerate(json.loads(notebook.read_text())["cells"]):
        if cell["cell_type"] == "code":
            for line in "".join(cell["source"]).splitlines():
                yield index, line


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no numbered notebook"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(notebook):
    assert NOTEBOOK_NAME.match(notebook.name), f"{notebook.name}: use lowercase NN_name.ipynb"
    nb = json.loads(notebook.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{notebook.name} cell {index} has outputs"
            assert cell.get("execution_count") is None, f"{notebook.name} cell {index} has an execution count"
        assert "image/png;base64" not in json.dumps(cell), f"{notebook.name} cell {index} embeds an image"
    declared_parameters(notebook)  # raises unless exactly one cell is tagged 'parameters'
    long = [(i, len(line)) for i, line in code_lines(notebook) if len(line) > MAX_LINE]
    assert not long, f"{notebook.name}: (cell, length) of code lines over {MAX_LINE} characters: {long}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_title_is_numbered_like_the_file(notebook):
    assert notebook_title(notebook).startswith(f"{notebook.name[:2]} · "), notebook_title(notebook)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_numbered_plan_matches_numbered_sections(notebook):
    """Where the sections are numbered, the introduction's numbered plan has one item per section."""
    cells = json.loads(notebook.read_text())["cells"]
    markdown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    sections = [int(m) for text in markdown for m in re.findall(r"^## (\d+)\. ", text, re.MULTILINE)]
    plan = [int(m) for m in re.findall(r"^(\d+)\. ", markdown[0], re.MULTILINE)]
    if sections:
        assert sections == list(range(1, len(sections) + 1)), f"sections numbered {sections}"
        assert plan == sections, f"the plan lists {plan}, the sections are {sections}"


def test_ci_parameters_only_use_declared_keys():
    assert set(CI_TABLE) == {nb.name for nb in NOTEBOOKS}, "every notebook needs a (possibly empty) CI section"


def test_undeclared_parameter_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"{NOTEBOOKS[0].name}:\n  NOT_A_PARAMETER: 1\n")
    with pytest.raises(ValueError, match="NOT_A_PARAMETER"):
        load_parameter_file(bad, NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_with_ci_parameters(notebook, executed_tutorial):
    result = executed_tutorial["results"][notebook.name]
    assert result["error"] is None, result["error"]
    nb = json.loads(result["path"].read_text())
    assert all(c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"), "a cell did not run"


@pytest.mark.slow
def test_the_tutorial_runs_again_in_the_same_folder(tmp_path):
    """``make tutorial`` twice in one folder: the second run finds every run of the first (data, warm start,
    training, evaluations, ablation grid) and finishes without a failure instead of refusing its own folders."""
    for attempt in ("first", "second"):
        results = run_all(tmp_path, CI_TABLE)
        failed = {name: r["error"].splitlines()[0] for name, r in results.items() if r["error"]}
        assert not failed, f"{attempt} run: {failed}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_executed_page_has_short_code_lines_and_no_trainer_log_table(notebook, executed_tutorial):
    executed = executed_tutorial["results"][notebook.name]["path"]
    long = [(i, len(line)) for i, line in code_lines(executed) if len(line) > MAX_LINE]
    assert not long, f"(cell, length) of code lines over {MAX_LINE} characters in the rendered page: {long}"
    outputs = json.dumps([c.get("outputs", []) for c in json.loads(executed.read_text())["cells"]])
    assert "Training Loss" not in outputs, "the Trainer's table of per-step losses is in the page"


# --- headline numbers ---------------------------------------------------------------------------------------

def parameters(notebook: Path, overrides: dict) -> dict:
    """The values a notebook ran with: its declared defaults, then the overrides."""
    return {**declared_parameters(notebook), **overrides}


def in_range(value, low, high) -> bool:
    return value is not None and math.isfinite(value) and low <= value <= high


def check_mini_clevrer(n: dict, p: dict, folder: Path | None):
    assert n["videos"] == p["N_VIDEOS"] == n["train_videos"] + n["val_videos"]
    assert set(n["questions_by_type"]) == {"descriptive", "explanatory", "predictive", "counterfactual"}
    assert all(count > 0 for count in n["questions_by_type"].values())
    assert n["questions"] == sum(n["questions_by_type"].values())
    assert 0 < n["multi_answer_share"] < 1 and n["videos_per_second"] > 0
    if folder is not None:
        data = folder / p["OUT_DIR"]
        on_disk = sum(len(json.loads((data / f).read_text())) for f in ("train.json", "val.json"))
        assert n["questions"] == on_disk


def check_qa_inversion(n: dict, p: dict, folder: Path | None):
    items = len(read_records(p["DATA_PATH"] or sample_path("nextgqa_val_sample.json")))
    assert n["items"] == items and n["negated"] == round(n["negated_share"] * items)
    assert abs(n["negated_share"] - p["P_NEGATE"]) < 0.1, "the share drawn for negation is far from P_NEGATE"
    assert 0.5 < n["negatable_share"] <= 1 and 0 <= n["drawn_but_no_rule"] <= items - n["negated"]
    drop, no_drop = n["correct_letters_random_drop"], n["correct_letters_no_drop"]
    assert sum(drop.values()) == sum(no_drop.values()) == items
    # NExT-GQA items have 5 options: without random drop a negated item has 4 correct letters, else 1 to 4
    assert no_drop == {"1": items - n["negated"], "4": n["negated"]}
    assert drop["1"] >= items - n["negated"] and all(drop.get(k, 0) > 0 for k in "234")


def check_token_weighting(n: dict, p: dict, folder: Path | None):
    alpha = n["alpha"]
    assert alpha == p["ALPHA"] and n["answers"] == p["NUM_GENERATIONS"] == len(n["rewards"])
    assert 1 - 1e-6 <= n["weight_min"] <= n["weight_mean"] <= n["weight_max"] <= alpha + 1e-6
    if n["D_max"] > 0:  # some position differs from the least divergent one: its weight reaches alpha
        assert n["weight_max"] == pytest.approx(alpha, abs=1e-3)
    assert all(in_range(r, 0.0, 2.0) for r in n["rewards"]), n["rewards"]
    assert in_range(n["mean_length"], 1, p["MAX_NEW_TOKENS"]) and in_range(n["share_above_1.1"], 0, 1)
    assert 0 <= n["shared_prefix"] <= p["MAX_NEW_TOKENS"]


def check_after_rl(n: dict, limit: int):
    """Accuracy (%) of the models after RL with the right and with swapped videos, on the same questions."""
    models = set(n["strict_pct"])
    for key in ("strict_pct", "partial_pct", "strict_swapped_pct", "partial_swapped_pct", "format_pct"):
        assert set(n[key]) == models and all(in_range(v, 0, 100) for v in n[key].values()), key
    for strict, partial in (("strict_pct", "partial_pct"), ("strict_swapped_pct", "partial_swapped_pct")):
        assert all(n[strict][m] <= n[partial][m] + 1e-9 for m in models), "strict > partial"
    counts = set(n["questions"].values())
    assert len(counts) == 1 and 0 < counts.pop() <= limit, "every model answers the same questions"


def check_training(n: dict, p: dict, folder: Path | None):
    runs = {name: run for name, run in n.items() if isinstance(run, dict) and name != "after_rl"}
    assert len(runs) == 2 and n["alpha"] == p["ALPHA"]
    check_after_rl(n["after_rl"], p["EVAL_LIMIT"])
    assert set(n["after_rl"]["strict_pct"]) == {"warm start", *runs}, "the warm start and both RL runs"
    length = p["MAX_COMPLETION_LENGTH"] or TINY_RECIPE["max_completion_length"]
    for name, run in runs.items():
        assert run["steps"] == (p["MAX_STEPS"] or TINY_RECIPE["max_steps"]), name
        for end in ("start", "end"):
            assert in_range(run["reward"][end], 0, 2) and in_range(run["reward_std"][end], 0, 2), name
            assert in_range(run["format_reward"][end], 0, 1), name
            assert in_range(run["completion_length"][end], 1, length), name
    weighted = [run for run in runs.values() if "token_weight_mean" in run]
    assert len(weighted) == 1, "exactly the TW-GRPO run logs token weights"
    tw = weighted[0]
    assert all(in_range(tw["token_weight_mean"][end], 1, n["alpha"]) for end in ("start", "end"))
    assert in_range(tw["token_weight_max"], 1, n["alpha"] + 1e-4)


def check_evaluation(n: dict, p: dict, folder: Path | None):
    checkpoints = set(n["strict_pct"])
    assert {"checkpoints/sft", "checkpoints/grpo", "checkpoints/tw-grpo"} <= checkpoints, "notebook 03's models"
    check_after_rl(n, p["LIMIT"])  # both videos, the same questions for every checkpoint
    assert n["generated_on_resume"] == 0 and n["missing_video_errors"] == 3
    records, lines = read_records(EXAMPLE_PREDICTIONS, with_lines=True)
    with pytest.warns(UserWarning, match="duplicate"):  # the example file holds one question twice
        expected = metrics.summarize(records, source=EXAMPLE_PREDICTIONS.name, lines=lines)
    assert n["example_file"] == {"strict_pct": expected["overall"]["strict_accuracy"],
                                 "partial_pct": expected["overall"]["partial_accuracy"],
                                 "errors": expected["errors"], "duplicates": expected["duplicates"]}


def check_ablations(n: dict, p: dict, folder: Path | None):
    rows, seeds = p["ROWS"], sorted(p["SEEDS"])
    assert n["seeds"] == {row: seeds for row in rows}, "the table lacks a row or a seed"
    assert n["runs"] == len(rows) * len(seeds) and n["questions_per_run"] == [p["EVAL_LIMIT"]]
    for key in ("strict_all", "strict_swapped", "partial_all", "partial_swapped", "format_pct", "no_signal_steps_pct"):
        assert list(n[key]) == rows and all(in_range(v, 0, 100) for v in n[key].values()), key
    assert all(v is None if len(seeds) < 2 else in_range(v, 0, 100) for v in n["strict_all_std"].values())
    for video in ("all", "swapped"):
        assert all(n[f"strict_{video}"][row] <= n[f"partial_{video}"][row] + 1e-9 for row in rows)
    assert all(in_range(v, 0, 100) for v in n["start"].values()) and len(n["start"]) == 4
    assert list(n["gain_over_start"]) == rows
    for row, gain in n["gain_over_start"].items():  # a row's mean minus the start's, with its interval
        assert gain["mean"] == pytest.approx(n["strict_all"][row] - n["start"]["strict_all"])
        assert (gain["low"] is None) if len(seeds) < 2 else gain["low"] <= gain["mean"] <= gain["high"]
    assert n["contrasts"], "no contrast of the paper was measured"
    for title, c in n["contrasts"].items():
        if c["low"] is None:
            assert c["verdict"] == "one seed: no interval", title
        else:
            assert c["low"] <= c["mean"] <= c["high"], title
            assert c["verdict"].endswith("excludes 0") == (c["low"] > 0 or c["high"] < 0), title


CHECKS = {"00_mini_clevrer": check_mini_clevrer, "01_question_answer_inversion": check_qa_inversion,
          "02_token_weighting": check_token_weighting, "03_soft_reward_grpo_training": check_training,
          "04_benchmark_evaluation": check_evaluation, "05_ablations": check_ablations}


def test_every_notebook_has_a_check():
    assert set(CHECKS) == {nb.stem for nb in NOTEBOOKS}


def check_record(record: dict, notebook: Path, overrides: dict, folder: Path | None):
    assert record["notebook"] == notebook.stem and record["numbers"]
    assert set(record["headline"]) <= set(record["numbers"])
    assert 0 < record["seconds"] <= record["wall_seconds"], "run time not recorded"
    assert record["parameters"] == overrides
    CHECKS[notebook.stem](record["numbers"], parameters(notebook, overrides), folder)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_headline_numbers_of_the_ci_run(notebook, executed_tutorial):
    records = headline.read_records(executed_tutorial["dir"])
    assert notebook.stem in records, f"{notebook.name} recorded no headline numbers"
    check_record(records[notebook.stem], notebook, CI_TABLE[notebook.name], executed_tutorial["dir"])


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_published_headline_numbers_of_the_default_run(notebook):
    records = headline.read_records(PUBLISHED_RECORDS)
    assert notebook.stem in records, f"no published record of {notebook.name}: `make tutorial`, then publish"
    check_record(records[notebook.stem], notebook, {}, None)


def test_readme_numbers_are_the_published_records():
    text = README.read_text()
    block = text.split(headline.README_BEGIN)[1].split(headline.README_END)[0].strip()
    assert block == readme_table(headline.read_records(PUBLISHED_RECORDS)), (
        "the README's notebook numbers differ from benchmarks/results/notebooks/: run the runner with "
        "--records-only --publish")


def test_readme_ablation_table_is_the_measured_file():
    """The README's ablation tables are a copy of the grid's own output (notebook 05 / ``twgrpo ablate``)."""
    measured = REPO_ROOT / "benchmarks" / "results" / "ablations.md"
    rows = [line for line in measured.read_text().splitlines() if line.startswith("|")]
    readme = README.read_text().splitlines()
    assert rows and all(row in readme for row in rows), "README's ablation table differs from " + str(measured)


def test_live_controls_call_the_function_only_when_a_value_changes(capsys):
    import ipywidgets as widgets

    from twgrpo_lib.tutorial.controls import live_controls

    seen = []
    box = live_controls(lambda alpha, name: seen.append((alpha, name)), alpha=widgets.FloatSlider(value=1.7),
                        name=widgets.Text("a"))
    assert seen == [] and len(box.children) == 3
    box.children[0].value = 2.0  # what moving the slider does
    box.children[1].value = "b"
    assert seen == [(2.0, "a"), (2.0, "b")]
