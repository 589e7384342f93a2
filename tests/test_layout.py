"""The package's shape: what may import what, and which private names of other packages it uses.

Read the import graph as the architecture: the foundation modules know nothing of training,
and no two modules import each other, directly or round a loop. Private names (``_x``) of
Lightning, torch, Hydra and the others are no API: each one the package uses is listed below
with why, and a new one fails here until it is listed.
"""

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gan_lightning"
#: the package's top-level modules and subpackages (and its ``__init__``): the nodes of its
#: import graph
NODES = {p.name.removesuffix(".py") for p in PACKAGE.iterdir()
         if p.suffix == ".py" or (p / "__init__.py").is_file()}

#: modules that know nothing of training, and the package modules each may import
#: (besides its own subpackage): small helpers only
FOUNDATION = {
    "metrics": {"errors", "ranks", "pixels", "cache"},
    "models": set(),
    "losses": set(),
    "data": {"cache", "datasets", "images", "loader", "pixels", "ranks"},
    "datasets": {"errors"},
    "loader": set(),
    "images": {"errors"},
    "pixels": set(),
    "cache": set(),
    "ranks": set(),
    "errors": set(),
    "record": set(),
}
#: ... and those of them that import neither Lightning nor Hydra
NO_FRAMEWORK = FOUNDATION.keys() - {"data"}


def package_imports(path: Path) -> tuple[set[str], set[str]]:
    """The ``gan_lightning`` modules (top level) and the top-level third-party packages a file
    imports (anywhere in it, also inside functions)."""
    ours, theirs = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # ``from gan_lightning import speedups`` imports the module ``speedups``
            names = ([f"gan_lightning.{a.name}" for a in node.names]
                     if node.module == "gan_lightning" else [node.module])
        for name in names:
            if name.startswith("gan_lightning."):
                if name.split(".")[1] in NODES:
                    ours.add(name.split(".")[1])
            elif name != "gan_lightning":
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
    if name in NO_FRAMEWORK:
        assert "lightning" not in theirs and "hydra" not in theirs


def test_import_graph_has_no_cycles():
    graph = {name: set() for name in NODES}
    for path in PACKAGE.rglob("*.py"):
        graph[top(path)] |= package_imports(path)[0] - {top(path)}
    done, path = set(), []

    def visit(name):
        if name in path:
            raise AssertionError(f"import cycle: {' -> '.join(path[path.index(name):])} "
                                 f"-> {name}")
        if name in done:
            return
        path.append(name)
        for other in sorted(graph[name]):
            visit(other)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


#: Every private name of another package that ``gan_lightning`` uses, by module, with why.
#: A use is an import of a ``_name`` (or from a ``_module``), an attribute ``x._name`` or
#: ``getattr(x, "_name")`` that the package does not define itself, and, in a class derived
#: from another package's class, a ``self._name`` or method ``_name`` that the base defines.
#: The speed-ups all sit in ``speedups.py`` behind one switch (``fast``), each with a check
#: and a fall-back; the others are the only way to do what they do.
PRIVATE_NAMES = {
    "speedups.py": {
        "_current_fx_name": "hook_name: Lightning's hook name, stored without Module checks",
        "_call_callback_hooks": "callback_hooks: Lightning's callback dispatch, replaced",
        "_lightning_optimizers": "direct_updates: the strategy's LightningOptimizers",
        "_on_before_step": "direct_updates: the loop's step counter, as its step() calls it",
        "_on_after_step": "direct_updates: the same, after the step",
        "_build_kwargs": "step_kwargs: training_step's arguments, decided once",
        "_data_connector": "batch_hooks: where the batch-transfer hook selector lives",
        "_datahook_selector": "batch_hooks: which of module / datamodule runs each hook",
        "_valid_hooks": "batch_hooks: the hooks that selector answers for",
        "_logger_connector": "empty_logs: the per-batch reduction of self.log values",
        "_results": "empty_logs: whether anything was logged with self.log",
        "_should_check_val_fx": "no_validation: the per-batch 'validate now?' question",
    },
    "callbacks/checkpoint.py": {
        "_monitor_candidates": "RunCheckpoint: the values ModelCheckpoint names files with",
        "_save_last_checkpoint": "RunCheckpoint: last.ckpt at every epoch end, no top-k file",
        "_should_skip_saving_checkpoint": "RunCheckpoint: ModelCheckpoint's own skip rules",
        "_save_checkpoint": "RunCheckpoint: atomic writes, nothing non-finite saved",
        "_last_checkpoint_saved": "RunCheckpoint: what ModelCheckpoint reports as saved",
    },
    "callbacks/shutdown.py": {
        "_monitor_candidates": "a signal's last checkpoint, named as ModelCheckpoint names it",
        "_save_last_checkpoint": "a signal's last checkpoint, written by ModelCheckpoint",
    },
    "callbacks/progress.py": {
        "_should_update": "GANProgressBar: the tqdm bar's refresh rate, as Lightning's bar",
    },
    "distributed.py": {
        "_SubprocessScriptLauncher": "JobLauncher: Lightning's DDP launcher, ranks from the job",
        "_basic_subprocess_cmd": "JobLauncher: Lightning's command outside a Hydra job",
        "_call_children_scripts": "JobLauncher: starts the other ranks (overridden)",
        "_check_can_spawn_children": "JobLauncher: Lightning's checks before starting ranks",
        "_configure_launcher": "GANDDPStrategy: installs JobLauncher (overridden)",
        "_start_method": "GANDDPStrategy: only popen starts ranks as scripts",
        "_launcher": "GANDDPStrategy: the launcher the strategy uses",
        "_setup_model": "GANDDPStrategy: Lightning's DistributedDataParallel wrapping, per net",
    },
    "launcher.py": {
        "_return_value": "Hydra's JobReturn: the raw value (return_value re-raises a failure)",
    },
    "train.py": {
        "_get_rank": "the rank from the environment, before any process group exists",
    },
    "metrics/features.py": {
        "_TORCH_FIDELITY_AVAILABLE": "torchmetrics' check that torch-fidelity is installed",
        "_torch_fidelity_forward": "Inception's features and logits from one pass (falls back)",
    },
    "slurm_startup/sitecustomize.py": {
        "_exit": "os._exit (standard library, documented): leave at once from a signal handler",
    },
}


def private(name: str) -> bool:
    """``_name``: private by convention (not ``__dunder__``, not Hydra's ``_target_`` keys)."""
    return name.startswith("_") and not name.startswith("__") and not name.endswith("_")


def is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def own_names(trees: dict[Path, ast.Module]) -> set[str]:
    """The private names the package defines: functions, classes, module and class variables,
    and attributes it assigns on ``self``."""
    names = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
                if isinstance(node, ast.ClassDef):
                    names |= {t.id for s in node.body if isinstance(s, (ast.Assign, ast.AnnAssign))
                              for t in (s.targets if isinstance(s, ast.Assign) else [s.target])
                              if isinstance(t, ast.Name)}
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for t in ast.walk(target):
                        if isinstance(t, ast.Attribute) and is_self(t.value):
                            names.add(t.attr)
        names |= {t.id for s in tree.body if isinstance(s, (ast.Assign, ast.AnnAssign))
                  for t in (s.targets if isinstance(s, ast.Assign) else [s.target])
                  if isinstance(t, ast.Name)}
    return {n for n in names if private(n)}


def foreign_source(cls: type) -> str:
    """The source of the classes ``cls`` derives from in other packages."""
    text = []
    for base in cls.__mro__[1:]:
        if base is object or base.__module__.startswith("gan_lightning"):
            continue
        try:
            text.append(inspect.getsource(base))
        except (OSError, TypeError):  # a class written in C: its names are its attributes
            text.append(" ".join(f"self.{n}" for n in vars(base)))
    return "\n".join(text)


def inherited(path: Path, tree: ast.Module) -> set[str]:
    """Private names a class of ``path`` derived from another package's class uses on
    ``self`` or overrides, that the other package's class defines."""
    found = set()
    classes = [c for c in tree.body if isinstance(c, ast.ClassDef) and c.bases]
    if not classes:
        return found
    module = importlib.import_module(
        ".".join(("gan_lightning", *path.relative_to(PACKAGE).with_suffix("").parts)))
    for node in classes:
        source = foreign_source(getattr(module, node.name))
        used = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute) and is_self(n.value)}
        used |= {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        found |= {n for n in used if private(n)
                  and re.search(rf"(self\.|def |\b){re.escape(n)}\b", source)}
    return found


def private_names_used() -> dict[str, set[str]]:
    trees = {p: ast.parse(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))}
    ours = own_names(trees)
    used = {}
    for path, tree in trees.items():
        names = inherited(path, tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and not node.level \
                    and not node.module.startswith("gan_lightning"):
                names |= {part for part in node.module.split(".") if private(part)}
                names |= {a.name for a in node.names if private(a.name)}
            elif isinstance(node, ast.Import):
                names |= {p for a in node.names for p in a.name.split(".") if private(p)}
            elif isinstance(node, ast.Attribute) and not is_self(node.value) \
                    and private(node.attr) and node.attr not in ours:
                names.add(node.attr)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) > 1 \
                    and isinstance(node.args[1], ast.Constant) \
                    and isinstance(node.args[1].value, str) and private(node.args[1].value) \
                    and node.args[1].value not in ours:
                names.add(node.args[1].value)
        if names:
            used[path.relative_to(PACKAGE).as_posix()] = names
    return used


def test_private_names_of_other_packages_are_the_listed_ones():
    used = private_names_used()
    listed = {module: set(names) for module, names in PRIVATE_NAMES.items()}
    new = {m: sorted(n - listed.get(m, set())) for m, n in used.items() if n - listed.get(m, set())}
    gone = {m: sorted(n - used.get(m, set())) for m, n in listed.items() if n - used.get(m, set())}
    assert not new, f"private names not in PRIVATE_NAMES (list each with why, or avoid): {new}"
    assert not gone, f"PRIVATE_NAMES lists names no longer used (remove them): {gone}"
