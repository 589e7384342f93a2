"""The README's configuration table lists exactly the options that exist under conf/."""

import re

import pytest
from omegaconf import OmegaConf

from conftest import REPO

GROUPS = ["dataset", "model", "loss", "optimizer", "lr_schedule", "metrics", "trainer", "logger",
          "callbacks", "experiment", "debug", "paths", "hparams_search"]


def readme_table() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `(\w+)` \| (.*) \| (.*) \|$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_readme_lists_every_group_and_option():
    rows = readme_table()
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


def documented_commands() -> list[tuple[str, list[str]]]:
    """Every ``python train.py ...`` command in a README code block or inline code span, with
    line continuations joined: ``(file, overrides)``."""
    import shlex

    commands = []
    for path in [REPO / "README.md", *sorted(REPO.glob("experiments/*/README.md"))]:
        text = path.read_text().replace("\\\n", " ")
        for match in re.finditer(r"python train\.py([^`\n#]*)", text):
            args = [a for a in shlex.split(match.group(1)) if a != "-m"]
            commands.append((path.relative_to(REPO).as_posix(), args))
    return commands


def first_of_sweep(arg: str) -> str:
    """``key=a,b,c`` -> ``key=a`` (one job of the sweep); lists in brackets stay whole."""
    key, sep, value = arg.partition("=")
    if not sep or value.startswith("["):
        return arg
    return f"{key}={value.split(',')[0]}"


def test_every_documented_train_command_composes_and_validates(tmp_path):
    """README commands cannot drift from the configs: each composes (keys, groups and
    options exist) and passes the value checks, as one job of its sweep."""
    import importlib.util

    from conftest import compose_hydra_cfg
    from gan_lightning.validate import validate

    # the slurm launcher's settings compose where its plugin is installed (the dev extra)
    submitit = importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None
    commands = documented_commands()
    assert len(commands) >= 15
    for where, args in commands:
        slurm = submitit and "hydra/launcher=slurm" in args
        overrides = [first_of_sweep(a) for a in args if "<" not in a and (
            slurm or not a.startswith(("hydra/launcher", "hydra.launcher")))]
        cfg = compose_hydra_cfg([f"paths.output_root={tmp_path}", *overrides])
        task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        validate(task)  # every _target_ imports, the networks fit the contract
        assert cfg.model.generator._target_, (where, args)


@pytest.mark.parametrize("study", sorted(p.parent.name for p in REPO.glob(
    "experiments/*/report.json")))
def test_committed_verdicts_are_the_generated_ones(study):
    """What a study's README quotes as its verdict is what gan-report generated."""
    import json

    folder = REPO / "experiments" / study
    verdicts = " ".join(json.loads((folder / "report.json").read_text())["verdicts"])
    section = (folder / "README.md").read_text().split("## Verdict", 1)[1].split("\n## ", 1)[0]
    quoted = " ".join(line[2:] for line in section.splitlines() if line.startswith("> "))
    assert quoted and " ".join(quoted.split()) in " ".join(verdicts.split())
