"""The install files agree with each other: pins, the console script, Binder, package data."""

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#]+)", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_every_requirement_is_pinned():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            assert "==" in line, f"requirements.txt: {line!r} is not pinned"


def test_binder_uses_the_same_versions():
    main, binder = pins(ROOT / "requirements.txt"), pins(ROOT / "binder" / "requirements.txt")
    for name, version in binder.items():
        assert name in main, f"binder pins {name}, requirements.txt does not"
        assert version.split("+")[0] == main[name], f"{name}: binder {version} vs requirements.txt {main[name]}"
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111, "binder/postBuild must be executable"


def test_pyproject_declares_the_console_script():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["twgrpo"] == "twgrpo_lib.cli:main"
    declared = {re.split(r"[<>=\[ ]", dep)[0].lower() for dep in project["dependencies"]}
    assert declared <= set(pins(ROOT / "requirements.txt")), "pyproject dependencies missing from requirements.txt"


def test_cli_lists_its_commands(capsys):
    from twgrpo_lib.cli import COMMANDS, main

    assert main([]) == 2
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_bounded_libraries_match_the_pins():
    """trl and transformers are bounded in pyproject (the trainer overrides their private methods); the pins of
    requirements.txt must lie inside the bounds."""
    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bounds = {re.split(r"[<>=\[ ]", dep)[0].lower(): dep for dep in project["dependencies"]}
    pinned = pins(ROOT / "requirements.txt")
    for name in ("trl", "transformers"):
        spec = SpecifierSet(bounds[name][len(name):])
        assert "<" in str(spec), f"pyproject: {name} needs an upper bound"
        assert pinned[name] in spec, f"requirements.txt pins {name}=={pinned[name]} outside {spec}"


def test_a_wheel_install_finds_its_data_files(tmp_path):
    """A non-editable install (a built wheel, imported from another folder) finds the recipes, the samples and
    the shipped checkpoint."""
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(wheel_dir), str(ROOT)], check=True, capture_output=True)
    wheel = next(wheel_dir.glob("twgrpo_kit-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    code = ("import twgrpo_lib, json; "
            "from twgrpo_lib.train.grpo import resolve_settings; "
            "from twgrpo_lib.data import sample_path; "
            "from twgrpo_lib.models.shipped import shipped_checkpoint; "
            "print(json.dumps([twgrpo_lib.__file__, resolve_settings('paper_7b')['learning_rate'], "
            "str(sample_path('nextgqa_val_sample.json')), str(shipped_checkpoint()), "
            "sorted(p.name for p in (shipped_checkpoint().parents[2] / 'recipes').rglob('*.*'))]))")
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, capture_output=True,
                         text=True).stdout
    package, lr, sample, shipped, recipes = json.loads(out)
    assert package.startswith(str(target)), f"imported {package}, not the installed wheel"
    assert lr == 1e-6 and sample.startswith(str(target)) and shipped.startswith(str(target))
    assert {"paper_7b.yaml", "tiny_cpu.yaml", "lora_single_gpu.yaml", "zero3_offload.json",
            "deepspeed_zero3_offload.yaml"} <= set(recipes)
