"""Shared test setup: offline hub, a --runslow switch, and small shared fixtures."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("RUN_SLOW") == "1":
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow or RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def executed_tutorial(tmp_path_factory):
    """Every notebook executed once, in order, in one working folder with the CI parameters, as
    ``make tutorial`` does with the defaults; plus the rendered HTML pages. Shared by the notebook tests."""
    from twgrpo_lib.tutorial.runner import CI_PARAMETERS, list_notebooks, load_parameter_file, render_html, run_all

    out = tmp_path_factory.mktemp("tutorial")
    results = run_all(out, load_parameter_file(CI_PARAMETERS, list_notebooks()))
    index = render_html(results, out)
    return {"dir": out, "results": results, "index": index}


@pytest.fixture(scope="session")
def mc(tmp_path_factory):
    """A 4-video mini-CLEVRER build (seed 0), read-only: tests copy what they change."""
    from twgrpo_lib import cli

    out = tmp_path_factory.mktemp("data") / "mc"
    assert cli.main(["make-data", "--out", str(out), "--videos", "4", "--seed", "0", "--workers", "1"]) == 0
    return out
