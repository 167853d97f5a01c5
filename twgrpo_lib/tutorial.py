"""Run the tutorial notebooks with papermill, in order, with default or smoke parameters.

``python -m twgrpo_lib.tutorial --out build/tutorial`` executes every ``notebooks/NN_*.ipynb`` with the
defaults of its ``parameters`` cell. ``--parameters notebooks/ci_parameters.yaml`` applies the small
parameters CI uses; a key that a notebook does not declare is an error, so a renamed parameter cannot
silently fall back to a slow default.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
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
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "tutorial", help="executed notebooks go here")
    parser.add_argument("--parameters", type=Path, help="YAML of per-notebook parameters (e.g. notebooks/ci_parameters.yaml)")
    parser.add_argument("--only", nargs="*", help="run only notebooks whose name starts with one of these prefixes")
    args = parser.parse_args(argv)

    notebooks = list_notebooks()
    if args.only:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(p) for p in args.only)]
    table = load_parameter_file(args.parameters, list_notebooks()) if args.parameters else {}
    args.out.mkdir(parents=True, exist_ok=True)
    for notebook in notebooks:
        start = time.perf_counter()
        print(f"running {notebook.name} ...", flush=True)
        run_notebook(notebook, args.out, table.get(notebook.name), cwd=args.out)
        print(f"  done in {time.perf_counter() - start:.0f} s -> {args.out / notebook.name}", flush=True)
    print(f"\nExecuted notebooks are in {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
