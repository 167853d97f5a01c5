"""The rendered tutorial opens in headless Chromium: figures painted, no JavaScript errors, no broken links, and
an index page that shows every notebook with its purpose, run time and recorded headline numbers."""

import io
from pathlib import Path
from urllib.parse import unquote, urlparse

from browser import Browser
from PIL import Image

from twgrpo_lib.tutorial import headline

FIGURES = """Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => {
  const box = el.getBoundingClientRect();
  return {x: box.left + window.scrollX, y: box.top + window.scrollY, width: box.width, height: box.height,
          traces: el.querySelectorAll('.trace, .slice, .imagelayer image, .heatmaplayer image').length};
})"""


def colours_in(png: bytes) -> int:
    """Number of distinct colours in a PNG: a painted figure has axes, text and marks, a blank one 1-2."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return len(image.getcolors(maxcolors=1 << 20) or [])
LINKS = "Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"
IDS = "Array.from(document.querySelectorAll('[id]')).map(e => e.id)"


def check_links(page, hrefs, ids):
    broken = []
    for href in hrefs:
        parsed = urlparse(href)
        if parsed.scheme in ("http", "https", "mailto"):
            if not (parsed.netloc or parsed.scheme == "mailto"):
                broken.append(href)
        elif href.startswith("#"):  # browsers match the fragment as written, then percent-decoded
            fragment = href[1:]
            if fragment and fragment not in ids and unquote(fragment) not in ids:
                broken.append(href)
        elif not (page.parent / unquote(parsed.path)).exists():
            broken.append(href)
    return broken


CARDS = """Array.from(document.querySelectorAll('section.card')).map(card => ({
  id: card.id, link: card.querySelector('h2 a').getAttribute('href'), title: card.querySelector('h2').innerText,
  meta: card.querySelector('.meta').innerText, purpose: card.querySelector('.purpose').innerText,
  numbers: Array.from(card.querySelectorAll('table.numbers tr')).map(tr => tr.innerText)}))"""
PAGE = """({font: getComputedStyle(document.body).fontFamily, width: document.querySelector('main').offsetWidth,
  height: document.documentElement.scrollHeight})"""


def check_index(browser, tutorial):
    """One card per notebook: a link to its page, its numbered title, its purpose, its status and run time, and
    one row per headline number it recorded; readable styling; the page is painted."""
    records = headline.read_records(tutorial["dir"])
    cards = {card["id"]: card for card in browser.evaluate(CARDS)}
    assert list(cards) == [Path(name).stem for name in tutorial["results"]]
    for name, result in tutorial["results"].items():
        card, stem = cards[Path(name).stem], Path(name).stem
        assert card["link"] == stem + ".html" and card["title"].startswith(stem[:2] + " · ")
        assert len(card["purpose"]) > 100, f"{name}: no purpose shown"
        assert "ran without errors" in card["meta"] and headline.duration(result["seconds"]) in card["meta"]
        assert len(card["numbers"]) == len(records[stem]["headline"]), f"{name}: headline numbers missing"
        assert all(row.split("\t")[0] in records[stem]["headline"] for row in card["numbers"])
    page = browser.evaluate(PAGE)
    assert "sans-serif" in page["font"] and page["width"] <= 60 * 16, f"unstyled index page: {page}"
    png = browser.screenshot(0, 0, 1000, min(page["height"], 3000))
    assert colours_in(png) > 8, "the index page is blank"


def test_index_and_a_notebook_page_render(executed_tutorial):
    index = executed_tutorial["index"]
    pages = [index] + sorted(p for p in index.parent.glob("*.html") if p != index)
    with_figures = [p for p in pages if "js-plotly-plot" in p.read_text(errors="ignore")]
    assert with_figures, "no rendered notebook contains a plotly figure"
    with Browser() as browser:
        for page in [index, with_figures[0]]:
            browser.open(page.as_uri())
            broken = check_links(page, browser.evaluate(LINKS), set(browser.evaluate(IDS)))
            assert not broken, f"{page.name}: broken links {broken}"
            if page == index:
                check_index(browser, executed_tutorial)
                continue
            figures = browser.evaluate(FIGURES)
            assert figures, f"{page.name}: no figure element"
            for figure in figures:
                assert figure["width"] > 0 and figure["height"] > 0 and figure["traces"] > 0, (page.name, figure)
                png = browser.screenshot(figure["x"], figure["y"], figure["width"], figure["height"])
                assert colours_in(png) > 8, f"{page.name}: a figure is blank"
        assert not browser.errors, browser.errors
