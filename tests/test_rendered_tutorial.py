"""The rendered tutorial opens in headless Chromium: figures painted, no JavaScript errors, no broken links."""

import io
from urllib.parse import unquote, urlparse

from browser import Browser
from PIL import Image

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
                assert len(browser.evaluate(LINKS)) == len(executed_tutorial["results"])
                continue
            figures = browser.evaluate(FIGURES)
            assert figures, f"{page.name}: no figure element"
            for figure in figures:
                assert figure["width"] > 0 and figure["height"] > 0 and figure["traces"] > 0, (page.name, figure)
                png = browser.screenshot(figure["x"], figure["y"], figure["width"], figure["height"])
                assert colours_in(png) > 8, f"{page.name}: a figure is blank"
        assert not browser.errors, browser.errors
