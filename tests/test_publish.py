"""Publishing a default run: the notebooks' records, and notebook 05's ablation grid into benchmarks/ and the README."""

import json

import pytest

from twgrpo_lib.tutorial import headline
from twgrpo_lib.tutorial.runner import ABLATION_MARKERS, GRID_DIR, list_notebooks, publish


def test_publish_copies_records_and_the_ablation_grid(tmp_path):
    run = tmp_path / "run"
    (run / GRID_DIR).mkdir(parents=True)
    for notebook in list_notebooks():
        record = {"notebook": notebook.stem, "seconds": 1.0, "numbers": {"n": 1}, "headline": ["n"], "parameters": {}}
        (run / f"{notebook.stem}{headline.SUFFIX}").write_text(json.dumps(record))
    (run / GRID_DIR / "results.md").write_text("## Ablations\n\n| row | strict |\n|---|---|\n| start | 14.5 |\n")
    (run / GRID_DIR / "results.csv").write_text("row,strict_all\nstart,14.5\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"# kit\n{headline.README_BEGIN}\nold\n{headline.README_END}\n"
                      f"text\n{ABLATION_MARKERS[0]}\nold table\n{ABLATION_MARKERS[1]}\nend\n")
    published = publish(run, tmp_path / "records", readme, tmp_path / "ablations")
    assert set(published) == {nb.stem for nb in list_notebooks()}
    assert (tmp_path / "ablations.csv").read_text() == "row,strict_all\nstart,14.5\n"
    assert (tmp_path / "ablations.md").read_text() == (run / GRID_DIR / "results.md").read_text()
    text = readme.read_text()
    assert f"{ABLATION_MARKERS[0]}\n| row | strict |\n|---|---|\n| start | 14.5 |\n{ABLATION_MARKERS[1]}\nend" in text
    assert "old table" not in text and "## Ablations" not in text and "old\n" not in text

    (run / f"{list_notebooks()[0].stem}{headline.SUFFIX}").write_text(json.dumps(
        {"notebook": "x", "seconds": 1.0, "numbers": {}, "headline": [], "parameters": {"N": 2}}))
    with pytest.raises(ValueError, match="non-default parameters"):
        publish(run, tmp_path / "records", readme, tmp_path / "ablations")
