"""The package's shape: what may import what, and where Lightning's private names are used."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gan_lightning"

#: modules that know nothing of training, and the package modules each may import
#: (besides its own subpackage): small helpers only
FOUNDATION = {
    "metrics": {"errors", "ranks", "pixels", "cache"},
    "models": set(),
    "losses": set(),
    "data": {"errors", "cache", "images", "pixels"},
    "images": {"errors"},
    "pixels": set(),
    "cache": set(),
    "ranks": set(),
    "errors": set(),
    "record": set(),
}


def package_imports(path: Path) -> tuple[set[str], set[str]]:
    """The ``gan_lightning`` modules and the top-level third-party packages a file imports
    (anywhere in it, also inside functions)."""
    ours, theirs = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        for name in names:
            if name.startswith("gan_lightning."):
                ours.add(name.split(".")[1])
            else:
                theirs.add(name.split(".")[0])
    return ours, theirs


def top(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_foundation_modules_import_nothing_of_training(path):
    name = top(path)
    if name not in FOUNDATION:
        return
    ours, theirs = package_imports(path)
    assert ours - {name} <= FOUNDATION[name], f"{path.name} imports {sorted(ours - {name})}"
    if name in ("metrics", "losses", "models", "ranks", "record", "errors", "images", "pixels",
                "cache"):
        assert "lightning" not in theirs and "hydra" not in theirs


PRIVATE_LIGHTNING = ("_current_fx_name", "_lightning_optimizers", "_call_callback_hooks",
                     "_on_before_step", "_on_after_step", "PassThroughProfiler",
                     "_build_kwargs", "_datahook_selector")


def test_lightning_private_names_live_in_speedups():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "speedups.py":
            continue
        text = path.read_text()
        used = [n for n in PRIVATE_LIGHTNING if n in text]
        assert not used, f"{path.relative_to(PACKAGE)} uses {used}: belongs in speedups.py"
