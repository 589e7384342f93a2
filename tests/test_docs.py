"""The README and docs/ stay true to conf/: the configuration table lists exactly the options
that exist, every quoted ``python train.py`` command composes and validates, every quoted
config key exists, and every link to a file of the repository resolves."""

import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import REPO, backticked_rows, committed_studies

GROUPS = ["dataset", "model", "loss", "optimizer", "lr_schedule", "metrics", "trainer", "logger",
          "callbacks", "experiment", "debug", "paths", "hparams_search"]
CONFIGURATION = REPO / "docs" / "configuration.md"
#: the Markdown a reader is sent to: the README, the reference and the studies' READMEs
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
        REPO / "benchmarks" / "README.md", REPO / "experiments" / "README.md",
        *sorted(REPO.glob("experiments/**/README.md")), REPO / "examples/own_model/README.md"]
#: where the commands and config keys quoted must compose against conf/
REFERENCE = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def configuration_table() -> dict[str, str]:
    """``{group: its options cell}`` of configuration.md's groups table."""
    return {group: cells[0]
            for group, cells in backticked_rows(CONFIGURATION.read_text(), "Groups").items()}


def test_configuration_lists_every_group_and_option():
    rows = configuration_table()
    on_disk = {p.name for p in (REPO / "conf").iterdir() if p.is_dir() and p.name != "hydra"}
    assert set(rows) == on_disk == set(GROUPS)
    for group, cell in rows.items():
        options = {p.stem for p in (REPO / "conf" / group).glob("*.yaml")}
        listed = set(re.findall(r"`(\w+)`", cell))
        # every option is documented, and nothing is documented that does not exist
        assert listed == options, (group, options - listed, listed - options)


def test_readme_experiments_table_matches_the_configs():
    text = (REPO / "README.md").read_text()
    section = text.split("## Experiments", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))
    assert listed == {p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")}


#: Hydra's command-line flags that take a value (``--cfg job``): not overrides
HYDRA_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-dir", "-cd",
                          "--config-name", "-cn", "--info", "-i"}


def documented_commands() -> list[tuple[str, list[str]]]:
    """Every ``python train.py ...`` command in a code block or inline code span of the README,
    docs/ and the experiments' READMEs, with line continuations joined: ``(file, overrides)``."""
    import shlex

    commands = []
    for path in [*REFERENCE, *sorted(REPO.glob("experiments/**/README.md"))]:
        text = path.read_text().replace("\\\n", " ")
        for match in re.finditer(r"python train\.py([^`\n#]*)", text):
            words, args = shlex.split(match.group(1)), []
            while words:
                word = words.pop(0)
                if word in HYDRA_FLAGS_WITH_VALUE:
                    words.pop(0)
                elif not word.startswith("-"):  # -m, --multirun: not overrides
                    args.append(word)
            commands.append((path.relative_to(REPO).as_posix(), args))
    return commands


def first_of_sweep(arg: str) -> str:
    """``key=a,b,c`` -> ``key=a`` (one job of the sweep); lists in brackets stay whole."""
    key, sep, value = arg.partition("=")
    if not sep or value.startswith("["):
        return arg
    return f"{key}={value.split(',')[0]}"


def test_every_documented_train_command_composes_and_validates(tmp_path):
    """Documented commands cannot drift from the configs: each composes (keys, groups and
    options exist) and passes the value checks, as one job of its sweep."""
    import importlib.util

    from conftest import compose_hydra_cfg
    from gan_lightning.validate import validate

    # the slurm launcher's settings compose where its plugin is installed (the dev extra)
    submitit = importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None
    commands = documented_commands()
    assert len(commands) >= 15
    assert {where for where, _ in commands} >= {"README.md", "docs/configuration.md",
                                                 "docs/scaling.md", "docs/own-code.md"}
    for where, args in commands:
        slurm = submitit and "hydra/launcher=slurm" in args
        overrides = [first_of_sweep(a) for a in args if "<" not in a and (
            slurm or not a.startswith(("hydra/launcher", "hydra.launcher")))]
        cfg = compose_hydra_cfg([f"paths.output_root={tmp_path}", *overrides])
        task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        validate(task)  # every _target_ imports, the networks fit the contract
        assert cfg.model.generator._target_, (where, args)


def key_paths(node, prefix: str = "") -> set[str]:
    """Every dotted path of a (plain, unresolved) config tree."""
    paths = set()
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}{key}"
            paths |= {path} | key_paths(value, f"{path}.")
    return paths


def known_keys() -> set[str]:
    """Every config key a documented override may set: the composed default config (with the
    SLURM launcher and the Optuna sweeper where installed), each option file of each group
    under its package, and any ``lightning.Trainer`` argument under ``trainer.``."""
    import importlib.util
    import inspect

    from lightning import Trainer

    from conftest import compose_hydra_cfg

    extra = [["hydra/launcher=slurm"]] * bool(importlib.util.find_spec(
        "hydra_plugins.hydra_submitit_launcher")) + [["hparams_search=optuna_fid"]] * bool(
        importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper"))
    keys = set()
    for overrides in [[], *extra]:
        keys |= key_paths(OmegaConf.to_container(compose_hydra_cfg(overrides), resolve=False))
    for file in (REPO / "conf").rglob("*.yaml"):
        group = file.parent.relative_to(REPO / "conf").as_posix()
        tree = OmegaConf.to_container(OmegaConf.load(file), resolve=False)
        tree.pop("defaults", None)
        package = "" if "@package _global_" in file.read_text() else f"{group.replace('/', '.')}."
        keys |= key_paths(tree, package)
    keys |= {f"trainer.{name}" for name in inspect.signature(Trainer.__init__).parameters}
    return keys


FILE_SUFFIX = re.compile(r"\.(json|ya?ml|py|md|png|gif|ckpt|pth|npz|npy|txt|db|html|sh)$")


def quoted_overrides() -> list[tuple[str, str]]:
    """``(file, token)`` for each ``key=value`` or dotted key quoted in an inline code span
    of the README and docs/ whose first part is a config group, a top-level key or hydra."""
    cfg = OmegaConf.load(REPO / "conf" / "config.yaml")
    roots = set(GROUPS) | set(cfg) | {"hydra"}
    found = []
    for path in REFERENCE:
        text = re.sub(r"^    .*$", "", path.read_text(), flags=re.M)  # code blocks: commands
        for span in re.findall(r"`([^`\n]+)`", text):
            for token in span.split():
                key = token.split("=", 1)[0]
                if (key.split(".")[0].split("/")[0] in roots and "<" not in token
                        and not FILE_SUFFIX.search(key) and re.fullmatch(r"[\w./]+", key)):
                    found.append((path.relative_to(REPO).as_posix(), token))
    return found


def test_config_keys_quoted_in_docs_exist():
    """A key the docs quote (``metrics.fid.num_fake``, ``ema.decay=0.999``) is a key of the
    config or of one of its option files; a group choice (``model=dcgan``,
    ``logger=[tensorboard,csv]``) names options that exist."""
    keys = known_keys()
    tokens = quoted_overrides()
    assert len(tokens) >= 40
    wrong = []
    for where, token in tokens:
        key, sep, value = token.partition("=")
        if "/" in key or key in GROUPS:  # a group choice: each option must exist
            folder = REPO / "conf" / key
            options = [v for v in re.split(r"[\[\],]", value) if v and v != "..."]
            if sep and folder.is_dir() and not all(
                    (folder / f"{o}.yaml").is_file() or o in ("null", "basic") for o in options):
                wrong.append((where, token))
        elif key not in keys:
            wrong.append((where, token))
    assert wrong == []


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def broken_links(pages: list[Path]) -> list[tuple[str, str]]:
    """``(page, target)`` for each relative link or image of ``pages`` that names no file or
    folder, or whose anchor names no heading of its Markdown page."""
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not this repository's
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists():
                broken.append((page.name, target))
            elif anchor and path.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", path.read_text(), flags=re.M)
                if anchor not in {github_anchor(h) for h in headings}:
                    broken.append((page.name, target))
    return broken


def test_links_to_repository_files_resolve():
    """Every relative link or image of the README, docs/, benchmarks' and experiments' READMEs
    names a file or folder of the repository, and an anchor names a heading of its page."""
    assert broken_links(DOCS) == []


def test_link_check_is_able_to_fail(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Why the default is not the report's learning rate\n")
    page.write_text("[a](other.md#why-the-default-is-not-the-reports-learning-rate) "
                    "[b](missing.md) [c](other.md#no-such-heading) [d](#top) ![e](x.png)\n"
                    "# Top\n")
    assert broken_links([page]) == [("page.md", "missing.md"),
                                    ("page.md", "other.md#no-such-heading"),
                                    ("page.md", "x.png")]


@pytest.mark.parametrize("study", committed_studies())
def test_committed_verdicts_are_the_generated_ones(study):
    """What a study's README quotes as its verdict is what gan-report generated (and
    tests/test_evidence.py rebuilds that report.json from the committed runs)."""
    import json

    folder = REPO / "experiments" / study
    verdicts = " ".join(json.loads((folder / "report.json").read_text())["verdicts"])
    section = (folder / "README.md").read_text().split("## Verdict", 1)[1].split("\n## ", 1)[0]
    quoted = " ".join(line[2:] for line in section.splitlines() if line.startswith("> "))
    assert quoted and " ".join(quoted.split()) in " ".join(verdicts.split())


def test_readme_set_up_commands_are_the_ci_ones():
    """The README's two set-up commands are the ones .ci/run runs."""
    readme = (REPO / "README.md").read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = [line.split("#")[0].strip() for line in readme.splitlines()
                if line.startswith("    ")]
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert commands == ["pip install -e \".[dev]\"", "pytest"]
    assert all(command in ci for command in commands)


def test_readme_is_short():
    """The README is read in minutes; the reference lives in docs/."""
    assert len((REPO / "README.md").read_text().splitlines()) <= 200
    assert Path(REPO / "docs").is_dir()
