"""Every `brittle ...` / `python run.py ...` command in the code blocks of README.md and of every
docs/*.md page composes and resolves: an example that no longer works fails here (the same
composition the CLI does, without running the job). The README stays a front door."""
from __future__ import annotations

import re
import shlex

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from brittle.cli.commandline import jobs_to_check, parse_command_line, sweep_jobs
from brittle.cli.validate import check_choices, check_targets
from tests.helpers import CONF, ROOT


def readme_commands(text: str) -> list[str]:
    """`brittle ...` and `python run.py ...` lines of fenced code blocks, continuation lines joined,
    comments cut (as `brittle ...`)."""
    commands = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            # (examples of a user's own config directory name theirs: tests/cli/test_sweeps.py
            # runs one)
            own = "--config-dir" in line or "hydra.searchpath" in line
            if (line.startswith(("python run.py", "brittle ")) or line == "brittle") and not own:
                command = re.sub(r"\s+#.*$", "", line).split(" && ")[0]
                commands.append(command.replace("python run.py", "brittle", 1))
    return commands


# Hydra's own flags and the argument each takes: they print or inspect, the overrides still compose
HYDRA_FLAGS = {"--cfg": 1, "-c": 1, "--package": 1, "-p": 1, "--resolve": 0, "--info": 1,
               "--help": 0, "-h": 0, "--hydra-help": 0}


def without_hydra_flags(argv: list[str]) -> list[str]:
    """argv minus Hydra's printing flags (`--cfg job --resolve`) and their arguments."""
    out, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
        elif arg in HYDRA_FLAGS:
            skip = HYDRA_FLAGS[arg]
        else:
            out.append(arg)
    return out


def configs_of(command: str) -> list[list[str]]:
    """The override lists a command stands for (brittle.cli.validate: each swept value once)."""
    argv = without_hydra_flags(shlex.split(command.replace("python run.py", "brittle", 1))[1:])
    line = parse_command_line(argv)
    jobs = jobs_to_check(sweep_jobs(line))
    for job in jobs:
        problem = check_choices(job, line.config_dirs)
        if problem:
            raise ValueError(problem)
    return jobs


def check_command(command: str) -> None:
    """Compose and resolve every configuration of `command`, as `brittle` would."""
    for overrides in configs_of(command):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
        # hydra's own section needs a run
        job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        OmegaConf.to_container(job, resolve=True)
        problem = check_targets(job)
        if problem:
            raise ValueError(problem)


README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
COMMANDS = readme_commands(README.read_text())
EXAMPLES = [pytest.param(command, id=f"{page.relative_to(ROOT)}: {command}")
            for page in PAGES for command in readme_commands(page.read_text())]


def test_readme_has_commands():
    assert len(COMMANDS) >= 8


def test_readme_is_a_front_door():
    """At most ~200 lines: the rest lives in docs/, one page a topic."""
    assert len(README.read_text().splitlines()) <= 220


def test_readme_links_every_docs_page():
    text = README.read_text()
    index = (ROOT / "docs" / "README.md").read_text()
    pages = [p.name for p in PAGES[1:] if p.name != "README.md"]
    assert "docs/README.md" in text
    assert [p for p in pages if f"({p})" not in index] == []


@pytest.mark.parametrize("command", EXAMPLES)
def test_documented_command_composes(command):
    check_command(command)


@pytest.mark.parametrize("broken", [
    "python run.py scorer=nosuch",                       # an option that does not exist
    "python run.py -m arch=resnet9,resnet10",             # one bad value in a sweep
    "python run.py dataset.profile.max_support=64",       # a setting that no longer exists
    "python run.py experiment=paper_cifar10 backbone.epoch=3",   # a misspelt key
])
def test_a_broken_command_fails(broken):
    with pytest.raises((ValueError, ConfigCompositionException)):
        check_command(broken)
