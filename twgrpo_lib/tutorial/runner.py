"""Run the tutorial notebooks with papermill, in order, and render them as HTML pages.

``python -m twgrpo_lib.tutorial.runner --out build/tutorial`` executes every ``notebooks/NN_*.ipynb`` with the
defaults of its ``parameters`` cell, in one working folder (later notebooks reuse what earlier ones made),
then writes ``NN_name.html`` for each executed notebook and an ``index.html``.
``--parameters notebooks/ci_parameters.yaml`` applies the small parameters CI uses; a key that a notebook
does not declare is an error, so a renamed parameter cannot silently fall back to a slow default.
"""

from __future__ import annotations

import argparse
import ast
import html
import json
import os
import re
import sys
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
CI_PARAMETERS = NOTEBOOK_DIR / "ci_parameters.yaml"
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

    Returns ``{notebook name: {"path", "seconds", "error"}}`` (``error`` is None on success).
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


def render_html(results: dict[str, dict], out_dir: Path) -> Path:
    """Write one HTML page per executed notebook and an ``index.html`` linking them; return the index."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    rows = []
    for name, result in results.items():
        executed = Path(result["path"])
        page = executed.with_suffix(".html")
        if executed.exists():
            body, _ = exporter.from_filename(str(executed))
            page.write_text(body, encoding="utf-8")
        status = "failed: " + html.escape(result["error"].splitlines()[0]) if result["error"] else "ok"
        title = notebook_title(executed if executed.exists() else NOTEBOOK_DIR / name)
        link = f'<a href="{page.name}">{html.escape(title)}</a>'
        rows.append(f"<tr><td>{link}</td><td>{result['seconds']:.0f} s</td><td>{status}</td></tr>")
    index = out_dir / "index.html"
    index.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>TW-GRPO kit tutorial</title></head><body>\n"
        "<h1>TW-GRPO kit: executed tutorial</h1>\n<table>\n<tr><th>notebook</th><th>run time</th><th>status</th></tr>\n"
        + "\n".join(rows)
        + "\n</table>\n</body></html>\n",
        encoding="utf-8",
    )
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "tutorial", help="executed notebooks go here")
    parser.add_argument("--parameters", type=Path,
                        help="YAML of per-notebook parameters (e.g. notebooks/ci_parameters.yaml)")
    parser.add_argument("--only", nargs="*", help="run only notebooks whose name starts with one of these prefixes")
    args = parser.parse_args(argv)

    notebooks = list_notebooks()
    if args.only:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(p) for p in args.only)]
    table = load_parameter_file(args.parameters, list_notebooks()) if args.parameters else {}
    args.out.mkdir(parents=True, exist_ok=True)
    results = run_all(args.out, table, notebooks)
    index = render_html(results, args.out)
    print(f"\nExecuted notebooks are in {args.out.resolve()}; open {index.resolve()} in a browser.")
    failed = [name for name, result in results.items() if result["error"]]
    for name in failed:
        print(f"FAILED {name}: {results[name]['error'][:2000]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
