"""Every `python run.py ...` command in the README's code blocks composes: a README example that no
longer works fails here (the same composition the CLI does, without running the job)."""
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
            # (examples of a user's own config directory name theirs: tests/cli/test_sweeps.py runs one)
            own = "--config-dir" in line or "hydra.searchpath" in line
            if (line.startswith(("python run.py", "brittle ")) or line == "brittle") and not own:
                command = re.sub(r"\s+#.*$", "", line).split(" && ")[0]
                commands.append(command.replace("python run.py", "brittle", 1))
    return commands


def configs_of(command: str) -> list[list[str]]:
    """The override lists a command stands for (brittle.cli.validate: each swept value once)."""
    line = parse_command_line(shlex.split(command.replace("python run.py", "brittle", 1))[1:])
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
        job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])  # hydra's own needs a run
        OmegaConf.to_container(job, resolve=True)
        problem = check_targets(job)
        if problem:
            raise ValueError(problem)


COMMANDS = readme_commands((ROOT / "README.md").read_text())


def test_readme_has_commands():
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_composes(command):
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
