"""The documents the repository sends a reader to are in the repository, with the sections cited.

Every file git knows (code, tests, notebooks, data cards, recipes, README, the docs themselves) is scanned for
citations of Markdown documents (``docs/method.md §2``, ``format B of docs/formats.md``, a relative link
``[x](method.md)``, ``data_cards/mmvu.md``). Each cited document must be a file of the repository and each
cited section a ``## N. ...`` / ``## X. ...`` heading of it. Documents that live outside the repository (the
project's working notes) must not be cited at all. The docs also agree with the code they describe: the prompt
strings of ``docs/method.md §7`` are those of ``twgrpo_lib.core.prompts``, and the paper's numbers of §6 are
those of the ablation grid.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest

from twgrpo_lib.core import prompts
from twgrpo_lib.experiments.ablation_report import CONTRASTS
from twgrpo_lib.experiments.grid import ROW_BY_NAME

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

# A Markdown path: "docs/method.md", "README.md", "data_cards/mmvu.md" (not inside a URL or a longer path).
MD_PATH = r"(?<![\w/.-])(?P<doc>(?:[\w.-]+/)*[\w-]+\.md)\b"
REF = r"[0-9A-Z]+(?:-[0-9A-Z]+)?"  # "2", "B", "1-3"
REFS = rf"§\s*{REF}(?:\s*(?:,|and)\s*§\s*{REF})*"  # "§2", "§1-3, §6", "§1 and §5"
SECTION_CITATION = re.compile(MD_PATH + rf"\s*(?P<refs>{REFS})")
PATH_CITATION = re.compile(MD_PATH)
# "format B of docs/formats.md", "formats A-D of docs/formats.md", "format C or D of ..."
FORMAT_CITATION = re.compile(rf"\bformats?\s+(?P<refs>[A-Z](?:-[A-Z])?(?:(?:,\s*|\s+or\s+|\s+and\s+)[A-Z])*)"
                             rf"\s+of\s+{MD_PATH}")
LINK = re.compile(r"\]\((?P<target>(?![a-z]+://)[^)\s#]+\.md)(?:#[^)]*)?\)")  # a relative link
WORDED_SECTION = re.compile(MD_PATH + r"\s+section\s+\w+", re.IGNORECASE)  # write "§N", as everywhere else
# Documents outside the repository: the project's working notes and the shared folder beside a checkout.
OUTSIDE = re.compile(r"\b(?:METHOD|FORMATS|STYLE)\.md\b|\.\./share[d]\b|/work/share[d]\b")
HEADING = re.compile(r"^## (?P<id>[0-9]+|[A-Z])\. ", re.MULTILINE)


def sections(markdown: str) -> set[str]:
    """Ids of the numbered or lettered ``## N. Title`` headings of a Markdown text.

    >>> sorted(sections("# T\\n## 1. One\\ntext\\n## 2. Two\\n### 2.1 sub\\n## Notes\\n"))
    ['1', '2']
    """
    return {m["id"] for m in HEADING.finditer(markdown)}


def expand(refs: str) -> list[str]:
    """Section ids of a reference list: "§1-3, §6" -> 1, 2, 3, 6; "A-C" -> A, B, C.

    >>> expand("§1-3, §6"), expand("A-C or E")
    (['1', '2', '3', '6'], ['A', 'B', 'C', 'E'])
    """
    ids = []
    for start, end in re.findall(r"([0-9]+|[A-Z])(?:-([0-9]+|[A-Z]))?", refs.replace("§", " ")):
        if not end:
            ids.append(start)
        elif start.isdigit():
            ids += [str(k) for k in range(int(start), int(end) + 1)]
        else:
            ids += [chr(k) for k in range(ord(start), ord(end) + 1)]
    return ids


def resolve(doc: str, citing: Path, repo: Path) -> Path | None:
    """The cited file, as a path from the repository root or from the citing file's folder; None if neither."""
    for base in (repo, citing.parent):
        candidate = (base / doc).resolve()
        if candidate.is_file() and candidate.is_relative_to(repo):
            return candidate
    return None


def citations(text: str) -> list[tuple[int, str, list[str]]]:
    """``(line, document, section ids)`` of every document citation in a text.

    A path counts when it names a folder or a section (a bare ``results.md`` is a file name in code, and an
    upper-case folder such as ``OUT/results.md`` is a placeholder); relative Markdown links always count.

    >>> citations("see docs/method.md §1-2 and format B of docs/formats.md;\\n[x](y.md), OUT/r.md, r.md")
    [(1, 'docs/method.md', ['1', '2']), (1, 'docs/formats.md', ['B']), (2, 'y.md', [])]
    """
    found: dict[int, tuple[int, str, list[str]]] = {}  # start of the path -> citation

    def add(match: re.Match, group: str, refs: list[str]) -> None:
        start, doc = match.start(group), match[group]
        previous = found.get(start, (text.count("\n", 0, start) + 1, doc, []))
        found[start] = (*previous[:2], sorted(set(previous[2]) | set(refs), key=lambda r: (len(r), r)))

    for match in PATH_CITATION.finditer(text):
        folders = match["doc"].split("/")[:-1]
        if folders and not any(part.isupper() for part in folders):
            add(match, "doc", [])
    for pattern in (SECTION_CITATION, FORMAT_CITATION):
        for match in pattern.finditer(text):
            add(match, "doc", expand(match["refs"]))
    for match in LINK.finditer(text):
        add(match, "target", [])
    return [found[start] for start in sorted(found)]


def problems(text: str, citing: Path, repo: Path = REPO) -> list[str]:
    """What is wrong with the citations of one file's text: missing documents or sections, outside documents."""
    name = citing.relative_to(repo) if citing.is_relative_to(repo) else citing
    found = []
    for line, doc, refs in citations(text):
        if OUTSIDE.search(doc):
            continue  # reported below
        target = resolve(doc, citing, repo)
        if target is None:
            found.append(f"{name}:{line}: cites {doc}, which is not a file of the repository")
            continue
        missing = [ref for ref in refs if ref not in sections(target.read_text(encoding="utf-8"))]
        if missing:
            found.append(f"{name}:{line}: cites {doc} §{', §'.join(missing)}, which it does not have")
    for match in OUTSIDE.finditer(text):
        found.append(f"{name}:{text.count(chr(10), 0, match.start()) + 1}: cites {match[0]!r}, "
                     "which is not in the repository")
    for match in WORDED_SECTION.finditer(text):
        found.append(f"{name}:{text.count(chr(10), 0, match.start()) + 1}: {match[0]!r}: cite a section as §N")
    return found


def repository_files(repo: Path = REPO) -> list[Path]:
    """Files git tracks, plus new ones it does not ignore."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                             check=True, capture_output=True).stdout.decode()
    return [repo / name for name in listing.split("\0") if name and (repo / name).is_file()]


def readable_text(path: Path) -> str | None:
    """A file's text (a notebook's cell sources, joined by newlines); None for binary files."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None
    if path.suffix == ".ipynb":
        return "\n".join("".join(cell["source"]) for cell in json.loads(text)["cells"])
    return text


def test_docs_have_the_numbered_sections():
    assert sections((DOCS / "method.md").read_text()) == {str(k) for k in range(1, 8)}
    assert sections((DOCS / "formats.md").read_text()) == set("ABCDE")


def test_every_cited_document_and_section_is_in_the_repository():
    files = [path for path in repository_files() if path != Path(__file__).resolve()]  # its examples are bad
    texts = {path: readable_text(path) for path in files}
    cited = [(path, c) for path, text in texts.items() if text for c in citations(text)]
    assert sum(doc.endswith("docs/method.md") for _, (_, doc, _) in cited) > 50, "the scan found too few citations"
    assert {path.suffix for path, _ in cited} >= {".py", ".md", ".ipynb", ".yaml"}, "a kind of file was not scanned"
    found = [p for path, text in texts.items() if text for p in problems(text, path)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("text, expected", [
    ("as METHOD.md §2 says", "not in the repository"),
    ("see ../" + "shared/notes", "not in the repository"),
    ("the layout (FORMATS.md §B)", "not in the repository"),
    ("docs/method.md §8", "does not have"),
    ("docs/method.md §1-3, §9", "§9, which it does not have"),
    ("format F of docs/formats.md", "§F, which it does not have"),
    ("docs/formats.md section B", "cite a section as §N"),
    ("see data_cards/no_such_card.md", "not a file of the repository"),
    ("[the method](methods.md)", "not a file of the repository"),
])
def test_a_bad_citation_is_reported(text, expected):
    found = problems(text, REPO / "docs" / "example.md")
    assert len(found) == 1 and expected in found[0], found


def test_good_citations_pass():
    text = ("docs/method.md §1-3, §7; format A, B or D of docs/formats.md; formats A-E of docs/formats.md;\n"
            "[§4](method.md), [formats](formats.md#a-the-papers-multi-choice-format), README.md, OUT/results.md")
    assert problems(text, REPO / "docs" / "example.md") == []


def test_readme_links_the_docs():
    links = set(LINK.findall((REPO / "README.md").read_text()))
    assert {"docs/method.md", "docs/formats.md"} <= links


def python_literals(markdown: str) -> list[str]:
    """The string literals of the ```python blocks of a Markdown text."""
    return [ast.literal_eval(block.strip()) for block in re.findall(r"```python\n(.*?)```", markdown, re.DOTALL)]


def section(markdown: str, ref: str) -> str:
    """The text of the ``## ref. ...`` section."""
    return re.split(r"^## ", re.split(rf"^## {ref}\. ", markdown, flags=re.MULTILINE)[1], flags=re.MULTILINE)[0]


def test_prompt_strings_of_the_method_are_the_code_s_byte_for_byte():
    documented = python_literals(section((DOCS / "method.md").read_text(), "7"))
    code = [*prompts.TRAIN_TEMPLATES.values(), prompts.CLEVRER_SYSTEM_PROMPT, prompts.CLEVRER_EVAL_TEMPLATE,
            prompts.GENERAL_EVAL_TEMPLATE, *prompts.GENERAL_TYPE_SUFFIX.values()]
    assert sorted(documented) == sorted(code)


def table_rows(markdown: str) -> dict[str, list[str]]:
    """First cell -> the other cells, for every row of the Markdown tables of a text."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in markdown.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return {row[0]: row[1:] for row in rows}


def test_paper_numbers_of_the_method_are_the_ablation_grid_s():
    rows = table_rows(section((DOCS / "method.md").read_text(), "6"))
    assert float(rows["GRPO (binary reward, 1K RL)"][0]) == ROW_BY_NAME["grpo_binary"].paper
    assert float(rows["TW-GRPO (1K RL)"][0]) == ROW_BY_NAME["twgrpo_soft"].paper
    documented = [tuple(float(x) for x in rows[title]) for title in
                  ("soft vs binary reward", "multi-answer vs single-answer training",
                   "TW-GRPO vs GRPO, both with the soft reward")]
    main_table = (float(rows["TW-GRPO (1K RL)"][0]), float(rows["GRPO (binary reward, 1K RL)"][0]))
    assert documented + [main_table] == [paper for _, _, _, paper in CONTRASTS if paper is not None]
    for _, better, other, paper in CONTRASTS:
        if paper is not None:
            assert (ROW_BY_NAME[better].paper, ROW_BY_NAME[other].paper) == paper
