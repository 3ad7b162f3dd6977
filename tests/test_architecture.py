"""Who may import what (docs/ARCHITECTURE.md): the core's step names no kind, the
optimizer never imports the game side, and the core's shaders include only core files."""

from __future__ import annotations

import ast
import re
from importlib import resources
from pathlib import Path

import optimizer

PACKAGE = Path(optimizer.__file__).resolve().parent
# The core: what optimizer/sge.py may import (docs/ARCHITECTURE.md).
CORE = {"constants", "errors", "gpu", "kind", "parameters", "shaders", "view"}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved within optimizer/."""
    names = set()
    package = ["optimizer", *path.parent.relative_to(PACKAGE).parts]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_step_imports_no_kind():
    imported = {name.split(".")[1] for name in imported_modules(PACKAGE / "sge.py")
                if name.startswith("optimizer.") and name.count(".") >= 1}
    assert imported <= CORE, sorted(imported - CORE)


def test_nothing_under_optimizer_imports_game():
    offenders = {str(path.relative_to(PACKAGE)): sorted(name for name in imported_modules(path)
                                                        if name == "game" or name.startswith("game."))
                 for path in PACKAGE.rglob("*.py")}
    assert not {path: names for path, names in offenders.items() if names}


def test_core_shaders_include_only_core_files():
    core = resources.files("shaders").joinpath("core")
    names = {entry.name for entry in core.iterdir()}
    for entry in core.iterdir():
        for included in re.findall(r'^\s*#include\s+"([^"]+)"', entry.read_text(), re.MULTILINE):
            # copies.glsl is the slot each parameter set fills with its own writer.
            assert included in names or included == "copies.glsl", (entry.name, included)
        assert "target_uv" not in entry.read_text(), entry.name  # a kind's plane, not the core's
