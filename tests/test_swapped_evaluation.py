"""``twgrpo evaluate --swapped-videos`` (the grounding control inside the benchmark path) and the speed-ups the
ablation grid relies on: every question in one batch and one torch thread give the answers of one question at a
time with torch's default threads, on the shipped checkpoint with the paper's decoding."""

import json

import pytest

from twgrpo_lib import cli
from twgrpo_lib.data.predictions import read_records
from twgrpo_lib.data.run_folder import RunFolderError
from twgrpo_lib.data.synthetic.build import build_dataset
from twgrpo_lib.eval import evaluation as ev
from twgrpo_lib.eval.grounding import swapped_videos
from twgrpo_lib.models.shipped import shipped_checkpoint

N = 10  # questions per run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("mini")
    build_dataset(out, 5, seed=777, val_fraction=0.0, workers=1)
    return out


def settings(data, out, **kw):
    """The ablation grid's evaluation: training prompt and frames, the paper's decoding."""
    base = dict(model=str(shipped_checkpoint()), data=str(data / "train.json"), out=str(out), video_root=str(data),
                limit=N, max_new_tokens=192, batch_size=N, prompt="train", frame_sampling="fps", max_pixels=112 * 112)
    return ev.EvalSettings(**{**base, **kw})


def answers(out):
    return {r["id"]: r["model_output"] for r in read_records(out / ev.PREDICTIONS)}


@pytest.fixture(scope="module")
def right_and_swapped(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    right = ev.run_evaluation(settings(data, tmp / "right", cpu_threads=1), progress=False)
    swapped = ev.run_evaluation(settings(data, tmp / "swapped", swapped_videos=True, swap_seed=5, cpu_threads=1),
                                progress=False)
    return tmp, right, swapped


def test_each_question_is_shown_the_video_of_another(right_and_swapped):
    tmp, right, swapped = right_and_swapped
    records = read_records(tmp / "swapped" / ev.PREDICTIONS)
    own = [r["question"]["video"] for r in records]
    assert len(set(own)) > 1 and len(records) == N
    assert [r["shown_video"] for r in records] == swapped_videos(own, 5)  # grounding's derangement, seed 5
    assert all(r["shown_video"] != r["question"]["video"] for r in records)
    assert not any("shown_video" in r for r in read_records(tmp / "right" / ev.PREDICTIONS))
    assert swapped["videos"]["shown"] == "swapped" and swapped["videos"]["swap_seed"] == 5
    assert right["videos"] == {"shown": "right"} and swapped["settings"]["swapped_videos"] is True
    identity = json.loads((tmp / "swapped" / "run.json").read_text())["identity"]
    assert identity["videos"] == "swapped" and identity["swap_seed"] == 5
    assert "videos" not in json.loads((tmp / "right" / "run.json").read_text())["identity"]
    assert right["overall"]["count"] == swapped["overall"]["count"] == N  # scored against their own answers


def test_a_right_video_folder_refuses_a_swapped_run(data, right_and_swapped):
    tmp, _, _ = right_and_swapped
    with pytest.raises(RunFolderError, match="holds another run"):
        ev.run_evaluation(settings(data, tmp / "right", swapped_videos=True), progress=False)
    with pytest.raises(RunFolderError, match="holds another run"):  # another derangement is another run
        ev.run_evaluation(settings(data, tmp / "swapped", swapped_videos=True, swap_seed=6), progress=False)
    again = ev.run_evaluation(settings(data, tmp / "swapped", swapped_videos=True, swap_seed=5), progress=False)
    assert again["run"]["generated_this_run"] == 0  # the same swapped run resumes: nothing left to ask


def test_one_batch_and_one_thread_answer_as_one_question_at_a_time(data, right_and_swapped, tmp_path):
    """The straightforward path: one question per generate call, torch's default threads."""
    tmp, _, _ = right_and_swapped
    for name, swapped in (("right", False), ("swapped", True)):
        alone = settings(data, tmp_path / name, batch_size=1, swapped_videos=swapped, swap_seed=5)
        ev.run_evaluation(alone, progress=False)
        assert answers(tmp_path / name) == answers(tmp / name), name
    lengths = [r["completion_tokens"] for r in read_records(tmp / "right" / ev.PREDICTIONS)]
    assert len(set(lengths)) > 1  # answers of different lengths: the batch really is padded and ragged


def test_command_line_flags(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(ev, "run_evaluation", lambda s, force, progress: seen.update(s=s) or {"run": {"not_posed": 0}})
    monkeypatch.setattr(ev.metrics, "format_table", lambda summary: "")
    assert cli.main(["evaluate", "--model", "m", "--data", "d", "--out", str(tmp_path), "--swapped-videos",
                     "--swap-seed", "3", "--cpu-threads", "1"]) == 0
    assert (seen["s"].swapped_videos, seen["s"].swap_seed, seen["s"].cpu_threads) == (True, 3, 1)
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--model", "m", "--data", "d", "--out", str(tmp_path), "--cpu-threads", "0"])
