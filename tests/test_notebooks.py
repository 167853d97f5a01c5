"""Notebooks: committed clean, parameters declared, and every one executes with the CI parameters."""

import json

import pytest

from twgrpo_lib.tutorial.runner import (
    CI_PARAMETERS,
    NOTEBOOK_NAME,
    declared_parameters,
    list_notebooks,
    load_parameter_file,
)

NOTEBOOKS = list_notebooks()


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no numbered notebook"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(notebook):
    assert NOTEBOOK_NAME.match(notebook.name), f"{notebook.name}: use lowercase NN_name.ipynb"
    nb = json.loads(notebook.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{notebook.name} cell {index} has outputs"
            assert cell.get("execution_count") is None, f"{notebook.name} cell {index} has an execution count"
        assert "image/png;base64" not in json.dumps(cell), f"{notebook.name} cell {index} embeds an image"
    declared_parameters(notebook)  # raises unless exactly one cell is tagged 'parameters'


def test_ci_parameters_only_use_declared_keys():
    table = load_parameter_file(CI_PARAMETERS, NOTEBOOKS)
    assert set(table) == {nb.name for nb in NOTEBOOKS}, "every notebook needs a (possibly empty) CI section"


def test_undeclared_parameter_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"{NOTEBOOKS[0].name}:\n  NOT_A_PARAMETER: 1\n")
    with pytest.raises(ValueError, match="NOT_A_PARAMETER"):
        load_parameter_file(bad, NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_with_ci_parameters(notebook, executed_tutorial):
    result = executed_tutorial["results"][notebook.name]
    assert result["error"] is None, result["error"]
    nb = json.loads(result["path"].read_text())
    assert all(c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"), "a cell did not run"
