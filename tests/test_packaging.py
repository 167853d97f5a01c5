"""The install files agree with each other: pins, the console script, Binder."""

import re
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
