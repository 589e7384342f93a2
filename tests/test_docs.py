"""The README's configuration table lists exactly the options that exist under conf/."""

import re

from conftest import REPO

GROUPS = ["dataset", "model", "loss", "optimizer", "metrics", "trainer", "logger", "callbacks",
          "experiment", "debug", "paths", "hparams_search"]


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
