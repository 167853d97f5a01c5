"""The rendered tutorial's landing page, ``index.html``: what the kit is, then one card per notebook with its
purpose (the notebook's own introduction), its status, its run time and the headline numbers it recorded."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mistune

from twgrpo_lib.tutorial.headline import describe, duration

TEX = {r"\alpha": "α", r"\mu": "μ", r"\to": "→", r"\dots": "…", r"\ge": "≥", r"\le": "≤", r"\sim": "∼"}

ABOUT = """
<p>A tutorial and reproducibility kit for <strong>TW-GRPO</strong>, from Dang et al., <em>Reinforcing Video
Reasoning with Focused Thinking</em> (<a href="https://arxiv.org/abs/2505.24718">arXiv 2505.24718</a>):
reinforcement learning with GRPO for multiple-choice video question answering with Qwen2.5-VL, plus three ideas:
<strong>token weights</strong> that put the loss where the sampled answers disagree, a <strong>soft
multi-choice reward</strong> that gives partial credit, and <strong>question-answer inversion</strong>, which
turns single-answer questions into multi-answer ones.</p>
<p>Each notebook below teaches one part with the kit's own library (<code>twgrpo_lib</code>) and ran here
offline: a tiny Qwen2.5-VL on <em>mini-CLEVRER</em>, a CLEVRER-like video benchmark generated locally. Read them
in order: later notebooks reuse what earlier ones built. The method is specified in
<code>docs/method.md</code> and the data formats in <code>docs/formats.md</code> of the repository.</p>
"""

STYLE = """
body { font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       background: #f6f8fa; margin: 0; }
main { max-width: 58rem; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.9rem; margin: 0 0 .75rem; }
.run { color: #57606a; font-size: .95rem; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 1rem 1.25rem;
        margin: 1.25rem 0; }
.card h2 { font-size: 1.25rem; margin: 0 0 .25rem; }
.card h2 a { color: #0969da; text-decoration: none; }
.card h2 a:hover { text-decoration: underline; }
.meta { font-size: .9rem; color: #57606a; margin-bottom: .5rem; }
.ok { color: #1a7f37; font-weight: 600; }
.failed { color: #cf222e; font-weight: 600; }
.purpose ol, .purpose ul { padding-left: 1.4rem; margin: .4rem 0; }
.purpose p { margin: .4rem 0; }
code { font: .88em ui-monospace, SFMono-Regular, Menlo, monospace; background: #eff1f3; padding: .1em .3em;
       border-radius: 4px; }
table.numbers { border-collapse: collapse; margin-top: .6rem; font-size: .9rem; width: 100%; }
table.numbers caption { text-align: left; font-weight: 600; padding-bottom: .25rem; }
table.numbers th, table.numbers td { border-top: 1px solid #d8dee4; padding: .3rem .5rem; vertical-align: top;
                                     text-align: left; }
table.numbers th { white-space: nowrap; font-weight: 500; color: #57606a; width: 1%; }
"""


def tex_to_text(markdown: str) -> str:
    r"""Inline ``$...$`` math as plain text with HTML subscripts (the index page loads no math renderer).

    >>> tex_to_text(r"weights in $[1, \alpha]$ and $D_t$, $w_{i,t}$")
    'weights in [1, α] and D<sub>t</sub>, w<sub>i,t</sub>'
    """
    def plain(match: re.Match) -> str:
        text = match[1]
        for command, symbol in TEX.items():
            text = text.replace(command, symbol)
        text = re.sub(r"_\{([^}]*)\}|_(\w)", lambda m: f"<sub>{m[1] or m[2]}</sub>", text)
        return text.replace("{", "").replace("}", "").replace("\\", "")

    return re.sub(r"\$([^$]+)\$", plain, markdown)


def introduction(notebook: Path) -> tuple[str, str]:
    """(title, purpose) of a notebook: its first heading and the rest of its first Markdown cell, without the
    paragraph about run time (the page shows the measured one)."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    text = next(("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"), "")
    title, _, body = text.partition("\n")
    paragraphs = [p for p in re.split(r"\n\s*\n", body.strip()) if not p.lstrip().startswith("**Run time")]
    return title.lstrip("#").strip() or notebook.stem, "\n\n".join(paragraphs)


def numbers_table(result: Mapping[str, Any] | None) -> str:
    """The headline numbers of a record as a two-column HTML table."""
    if result is None:
        return '<p class="meta">No headline numbers were recorded.</p>'
    rows = []
    for line in describe(result):
        name, _, value = line.partition(": ")
        rows.append(f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>")
    return '<table class="numbers"><caption>Headline numbers</caption>' + "".join(rows) + "</table>"


def card(notebook: Path, page: str, run: Mapping[str, Any], result: Mapping[str, Any] | None) -> str:
    """One notebook's section of the index page."""
    title, purpose = introduction(notebook)
    status = (f'<span class="failed">failed: {html.escape(run["error"].splitlines()[0])}</span>' if run["error"]
              else '<span class="ok">ran without errors</span>')
    cells = f"; cells {duration(result['seconds'])}" if result else ""
    if result and "load_average" in result:
        cells += f"; load average {result['load_average']:.1f} on {result['cpu_count']} cores"
    return (f'<section class="card" id="{notebook.stem}"><h2><a href="{html.escape(page)}">{html.escape(title)}</a>'
            f'</h2><div class="meta">{status} · run time {duration(run["seconds"])}{cells}</div>'
            f'<div class="purpose">{mistune.html(tex_to_text(purpose))}</div>{numbers_table(result)}</section>')


def index_page(cards: list[str], run_note: str) -> str:
    """The whole ``index.html``."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>TW-GRPO kit: the tutorial</title><style>{STYLE}</style></head>\n<body><main>\n"
            f"<h1>TW-GRPO kit: the tutorial</h1>\n{ABOUT}\n<p class=\"run\">{html.escape(run_note)}</p>\n"
            + "\n".join(cards) + "\n</main></body></html>\n")
