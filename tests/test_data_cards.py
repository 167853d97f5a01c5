"""Data cards state facts that tests recompute, so a stale card fails."""

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CARDS = REPO / "data_cards"
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"  # a copy of shared/ beside the clone (CI); absent elsewhere
MMVU_SAMPLE = REPO / "twgrpo_lib" / "data" / "samples" / "mmvu_mc_val_sample.json"
MMVU_FULL = SHARED_FIXTURES / "video_r1_eval_mmvu.json"
FRONT_MATTER_KEYS = {"license", "source_datasets", "task_categories", "size_categories"}
SECTIONS = ("## Summary", "## Structure and fields", "## How to obtain it", "## Licence and access terms",
            "## How the kit uses it", "## Citation")


def front_matter(text: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", text, re.DOTALL)
    assert match, "card must start with YAML front matter"
    return yaml.safe_load(match.group(1))


@pytest.mark.parametrize("name", ["clevrer", "mmvu", "mvbench", "tempcompass", "videomme", "star"])
def test_card_layout(name):
    text = (CARDS / f"{name}.md").read_text()
    meta = front_matter(text)
    assert FRONT_MATTER_KEYS <= set(meta), FRONT_MATTER_KEYS - set(meta)
    positions = [text.find(section) for section in SECTIONS]
    assert all(p >= 0 for p in positions), [s for s, p in zip(SECTIONS, positions) if p < 0]
    assert positions == sorted(positions)
    assert "```json" in text and "@" in text.split("## Citation", 1)[1]
    literal = re.search(r"```json\n(.*?)\n```", text, re.DOTALL).group(1)
    json.loads(literal)  # the literal record is valid JSON


def table_row(text: str, label: str) -> list[str]:
    match = re.search(rf"^\| {re.escape(label)} \| (.*?) \|$", text, re.MULTILINE)
    assert match, f"row {label!r} missing"
    return [cell.strip().strip("`") for cell in match.group(1).split(" | ")]


def mmvu_facts(path: Path) -> list[str]:
    records = json.loads(path.read_text())
    letters = Counter(r["solution"].removeprefix("<answer>").removesuffix("</answer>") for r in records)
    option_counts = {len(r["options"]) for r in records}
    return [
        str(len(records)),
        str(len({r["video"].split("/")[3] for r in records})),
        str(len({r["video"] for r in records})),
        "/".join(str(n) for n in sorted(option_counts)),
        "/".join(str(letters[c]) for c in "ABCDE"),
        hashlib.sha256(path.read_bytes()).hexdigest(),
    ]


def test_mmvu_card_counts_and_literal_record():
    text = (CARDS / "mmvu.md").read_text()
    labels = ["records", "subjects (video folders)", "distinct videos", "options per question",
              "correct letter A/B/C/D/E", "sha256"]
    card = [table_row(text, label) for label in labels]
    full_column = [row[0].replace(",", "") for row in card]
    sample_column = [row[1].replace(",", "") for row in card]
    assert sample_column == mmvu_facts(MMVU_SAMPLE)
    literal = json.loads(re.search(r"```json\n(.*?)\n```", text, re.DOTALL).group(1))
    assert literal == json.loads(MMVU_SAMPLE.read_text())[0]
    if MMVU_FULL.is_file():  # in CI a copy of shared/ sits beside the clone
        assert full_column == mmvu_facts(MMVU_FULL)
        assert literal == json.loads(MMVU_FULL.read_text())[0]
