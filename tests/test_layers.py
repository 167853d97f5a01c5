"""The package's layers: which sub-package may import which, and no import cycles between modules.

core (the paper's math) imports nothing else of the kit; data imports only core; models add Qwen2.5-VL on top;
train and eval both build on models and never import each other; experiments combine them; the tutorial and
the command line sit on top. Imports inside functions count too.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "twgrpo_lib"
ALLOWED = {
    "core": {"core"},
    "data": {"core", "data"},
    "models": {"core", "data", "models"},
    "train": {"core", "data", "models", "train"},
    "eval": {"core", "data", "models", "eval"},
    "experiments": {"core", "data", "models", "train", "eval", "experiments"},
    "tutorial": {"core", "data", "models", "train", "eval", "experiments", "tutorial"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def kit_imports(path: Path) -> set[str]:
    """Dotted names of the kit's modules that ``path`` imports (``from twgrpo_lib.x import y`` gives
    ``twgrpo_lib.x.y`` when that is a module, else ``twgrpo_lib.x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("twgrpo_lib")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("twgrpo_lib"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: kit_imports(path) - {name} for name, path in MODULES.items()}


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n)))
def test_module_imports_only_lower_layers(name):
    own = layer(name)
    for target in GRAPH[name]:
        other = layer(target)
        if other is None:  # the package root (its version) or the command line
            assert target == "twgrpo_lib", f"{name} imports {target}"
            continue
        assert other in ALLOWED[own], f"{name} ({own}) imports {target} ({other}): not allowed"


def test_every_module_lies_in_a_layer():
    loose = [n for n in MODULES if layer(n) is None and n not in ("twgrpo_lib", "twgrpo_lib.cli")]
    assert not loose, f"modules outside the layers: {loose}"


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(GRAPH.get(name, ())):
            if target not in MODULES:
                continue
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target] if target in path else [name, target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(MODULES):
        if name not in state:
            visit(name, [name])


def test_the_package_map_names_every_module():
    doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text()))
    for name in MODULES:
        if name in ("twgrpo_lib",) or name.endswith("__main__"):
            continue
        short = name.removeprefix("twgrpo_lib.")
        assert f"``{short}``" in doc or f"``{short.rsplit('.', 1)[-1]}``" in doc, \
            f"twgrpo_lib/__init__.py does not mention {short}"
