"""Run the tutorial notebooks with papermill, in order, and render them as HTML pages.

``python -m twgrpo_lib.tutorial.runner --out build/tutorial`` executes every ``notebooks/NN_*.ipynb`` with the
defaults of its ``parameters`` cell, in one working folder (later notebooks reuse what earlier ones made),
then writes ``NN_name.html`` for each executed notebook and an ``index.html``, the landing page.
``--parameters notebooks/ci_parameters.yaml`` applies the small parameters CI uses; a key that a notebook
does not declare is an error, so a renamed parameter cannot silently fall back to a slow default.

Each notebook's summary cell records its headline numbers in ``NN_name.headline.json`` beside the executed
notebook (``headline.record``); the runner adds its wall time and parameters. ``--publish`` copies the records
of a default-parameter run to ``benchmarks/results/notebooks/`` and writes the README's table of measured
notebook numbers from them; with them notebook 05's ablation grid (``results.md`` / ``.csv``) to
``benchmarks/results/ablations.*`` and into the README; ``--records-only`` does that from an earlier run's folder
without executing. ``make results`` is a fresh default run, published.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import sys
import time
from datetime import date
from pathlib import Path

import yaml

from twgrpo_lib.tutorial import headline

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
CI_PARAMETERS = NOTEBOOK_DIR / "ci_parameters.yaml"
PUBLISHED_RECORDS = REPO_ROOT / "benchmarks" / "results" / "notebooks"
PUBLISHED_ABLATIONS = REPO_ROOT / "benchmarks" / "results" / "ablations"  # .md and .csv
GRID_DIR = "ablations"  # notebook 05's OUT_DIR, relative to the folder the notebooks run in
ABLATION_MARKERS = ("<!-- ablations: begin -->", "<!-- ablations: end -->")
README = REPO_ROOT / "README.md"
NOTEBOOK_NAME = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")


def list_notebooks(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks of ``directory`` in run order."""
    return sorted(p for p in Path(directory).glob("*.ipynb") if p.name[:2].isdigit())


def declared_parameters(notebook: Path) -> dict[str, object]:
    """Names assigned in the notebook's cell tagged ``parameters``, with their literal defaults.

    Raises ``ValueError`` unless exactly one code cell carries the tag.
    """
    cells = json.loads(Path(notebook).read_text())["cells"]
    tagged = [c for c in cells if c["cell_type"] == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"{notebook}: expected exactly one cell tagged 'parameters', found {len(tagged)}")
    names: dict[str, object] = {}
    for node in ast.parse("".join(tagged[0]["source"])).body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    names[target.id] = ast.literal_eval(node.value) if node.value is not None else None
                except ValueError:
                    names[target.id] = ast.unparse(node.value)
    return names


def load_parameter_file(path: Path, notebooks: list[Path]) -> dict[str, dict]:
    """Read the per-notebook parameter YAML and check every key against the notebook's declarations."""
    table = yaml.safe_load(Path(path).read_text()) or {}
    names = {nb.name for nb in notebooks}
    for notebook_name, params in table.items():
        if notebook_name not in names:
            raise ValueError(f"{path}: section {notebook_name!r} names no notebook in {sorted(names)}")
        declared = declared_parameters(next(nb for nb in notebooks if nb.name == notebook_name))
        unknown = sorted(set(params or {}) - set(declared))
        if unknown:
            raise ValueError(
                f"{path}: {notebook_name} does not declare parameter(s) {unknown}; it declares {sorted(declared)}"
            )
    return {name: dict(params or {}) for name, params in table.items()}


def run_notebook(notebook: Path, out_dir: Path, parameters: dict | None = None, cwd: Path | None = None) -> Path:
    """Execute one notebook with papermill into ``out_dir`` and return the executed copy's path."""
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / notebook.name
    papermill.execute_notebook(
        str(notebook),
        str(output),
        parameters=parameters or {},
        kernel_name="python3",
        cwd=str(cwd or notebook.parent),
        progress_bar=False,
    )
    return output


def run_all(out_dir: Path, table: dict | None = None, notebooks: list[Path] | None = None) -> dict[str, dict]:
    """Execute ``notebooks`` in order in ``out_dir``; a failing notebook is recorded and the rest still run.

    Returns ``{notebook name: {"path", "seconds", "error"}}`` (``error`` is None on success); the wall time and
    the parameters passed are added to each notebook's headline record.
    """
    os.environ.setdefault("PLOTLY_RENDERER", "notebook")  # figures embed plotly.js: pages work offline
    results = {}
    for notebook in notebooks or list_notebooks():
        start = time.perf_counter()
        print(f"running {notebook.name} ...", flush=True)
        error = None
        try:
            run_notebook(notebook, out_dir, (table or {}).get(notebook.name), cwd=out_dir)
        except Exception as exc:  # papermill raises PapermillExecutionError with the cell's traceback
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        headline.annotate(out_dir, notebook.stem, wall_seconds=round(seconds, 1),
                          parameters=(table or {}).get(notebook.name) or {},
                          load_average=round(os.getloadavg()[1], 1), cpu_count=os.cpu_count())
        status = "FAILED" if error else "done"
        print(f"  {status} in {seconds:.0f} s -> {out_dir / notebook.name}", flush=True)
        results[notebook.name] = {"path": out_dir / notebook.name, "seconds": seconds, "error": error}
    return results


def notebook_title(notebook: Path) -> str:
    """The first Markdown heading of a notebook, or its file name."""
    for cell in json.loads(Path(notebook).read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return Path(notebook).stem


def render_html(results: dict[str, dict], out_dir: Path, parameters: Path | None = None) -> Path:
    """Write one HTML page per executed notebook and the ``index.html`` landing page; return the index."""
    from nbconvert import HTMLExporter

    from twgrpo_lib.tutorial import site

    exporter = HTMLExporter(template_name="lab")
    records = headline.read_records(out_dir)
    cards = []
    for name, result in results.items():
        executed = Path(result["path"])
        page = executed.with_suffix(".html")
        if executed.exists():
            body, _ = exporter.from_filename(str(executed))
            page.write_text(body, encoding="utf-8")
        source = executed if executed.exists() else NOTEBOOK_DIR / name
        cards.append(site.card(source, page.name, result, records.get(Path(name).stem)))
    total = sum(result["seconds"] for result in results.values())
    note = (f"Executed on {date.today().isoformat()} with "
            + (f"the parameters of {parameters.name}" if parameters else "each notebook's default parameters")
            + f", CPU only unless a GPU was present; {len(results)} notebooks in {headline.duration(total)}.")
    index = out_dir / "index.html"
    index.write_text(site.index_page(cards, note), encoding="utf-8")
    return index


def publish(out_dir: Path, records_dir: Path = PUBLISHED_RECORDS, readme: Path = README,
            ablations: Path = PUBLISHED_ABLATIONS) -> dict[str, dict]:
    """Copy the headline records of a default-parameter run of every notebook to ``records_dir`` and write the
    README's table of measured notebook numbers from them; copy notebook 05's grid tables to ``ablations``
    (``.md``, ``.csv``) and into the README's ablation block; return the records."""
    records = headline.read_records(out_dir)
    names = [nb.stem for nb in list_notebooks()]
    missing = [name for name in names if name not in records]
    if missing:
        raise ValueError(f"{out_dir}: no headline record of {missing}; run every notebook first")
    changed = [name for name in names if records[name].get("parameters")]
    if changed:
        raise ValueError(f"{out_dir}: {changed} ran with non-default parameters; publish a `make tutorial` run")
    records_dir.mkdir(parents=True, exist_ok=True)
    for old in records_dir.glob("*" + headline.SUFFIX):
        old.unlink()
    for name in names:
        shutil.copy(out_dir / (name + headline.SUFFIX), records_dir / (name + headline.SUFFIX))
    published = headline.read_records(records_dir)
    text = headline.replace_block(readme.read_text(encoding="utf-8"), readme_table(published))
    grid = out_dir / GRID_DIR
    if (grid / "results.md").exists():  # notebook 05's grid: the table and the CSV, the README's copy of the table
        for suffix in (".md", ".csv"):
            shutil.copy(grid / f"results{suffix}", ablations.with_suffix(suffix))
        table = (grid / "results.md").read_text(encoding="utf-8").split("\n", 1)[1].strip()  # without its title
        text = headline.replace_block(text, table, ABLATION_MARKERS)
    readme.write_text(text, encoding="utf-8")
    return published


def readme_table(records: dict[str, dict]) -> str:
    """The README's measured-notebook table for these records (titles from the notebooks)."""
    titles = {nb.stem: notebook_title(nb) for nb in list_notebooks()}
    return headline.readme_table(records, titles, "make tutorial")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "tutorial", help="executed notebooks go here")
    parser.add_argument("--parameters", type=Path,
                        help="YAML of per-notebook parameters (e.g. notebooks/ci_parameters.yaml)")
    parser.add_argument("--only", nargs="*", help="run only notebooks whose name starts with one of these prefixes")
    parser.add_argument("--records-only", action="store_true",
                        help="execute nothing: print the headline records found in --out (and --publish them)")
    parser.add_argument("--publish", action="store_true", help="copy the records of this default-parameter run to "
                        "benchmarks/results/notebooks/ and write the README's table of measured notebook numbers")
    args = parser.parse_args(argv)
    if args.records_only:
        for name, record in headline.read_records(args.out).items():
            print(f"{name}: {headline.duration(record.get('wall_seconds', record['seconds']))}")
            print("".join(f"  {line}\n" for line in headline.describe(record, everything=True)), end="")
        if args.publish:
            publish(args.out)
            print(f"published to {PUBLISHED_RECORDS} and {README}")
        return 0

    notebooks = list_notebooks()
    if args.only:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(p) for p in args.only)]
    table = load_parameter_file(args.parameters, list_notebooks()) if args.parameters else {}
    args.out.mkdir(parents=True, exist_ok=True)
    results = run_all(args.out, table, notebooks)
    index = render_html(results, args.out, args.parameters)
    print(f"\nExecuted notebooks are in {args.out.resolve()}; open {index.resolve()} in a browser.")
    failed = [name for name, result in results.items() if result["error"]]
    for name in failed:
        print(f"FAILED {name}: {results[name]['error'][:2000]}", file=sys.stderr)
    if args.publish and not failed:
        publish(args.out)
        print(f"published the headline records to {PUBLISHED_RECORDS} and {README}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
