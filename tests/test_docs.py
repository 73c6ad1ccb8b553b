"""Every `brittle ...` / `python run.py ...` command in the code blocks of README.md and of every
docs/*.md page composes and resolves: an example that no longer works fails here (the same
composition the CLI does, without running the job). The README stays a front door."""
from __future__ import annotations

import re
import shlex
import sys
import tempfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from brittle.cli.commandline import jobs_to_check, parse_command_line, sweep_jobs
from brittle.cli.validate import check_choices, check_targets
from tests.helpers import CONF, ROOT


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a page, in order."""
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def page_modules(text: str, into: Path) -> None:
    """Write a page's module blocks (first line `# name.py`) into directory `into`."""
    for block in python_blocks(text):
        first = block.splitlines()[0]
        if re.fullmatch(r"# \w+\.py", first):
            (into / first[2:]).write_text(block)


# the modules docs/your-model.md defines (my_model.py) are what its commands name: importable here
_MODULES = Path(tempfile.mkdtemp(prefix="brittle-docs-"))
page_modules((ROOT / "docs" / "your-model.md").read_text(), _MODULES)
sys.path.insert(0, str(_MODULES))


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


# a `+key=` / `++key=` adds a setting the config lacks: every setting of brittle's is written in
# its YAML (tests/conf/test_written_out.py), so only Hydra's plugins' own settings may need one
ADDED = re.compile(r"(?<![\w+])\+\+?([a-z_]+(?:\.[a-z_0-9]+)+)=")
# a dotted setting named in prose or code: `scorer.magnitude`, `trainer.concurrent=4`
SETTING = re.compile(r"(?<![\w./+-])\+{0,2}([a-z_]+(?:\.[a-z_0-9]+)+)(?=[=`\s,:;)])")
FILES = {"py", "pt", "npy", "npz", "json", "yaml", "md", "csv", "txt", "parquet", "log", "gz"}


def _texts() -> dict[str, str]:
    """Every page, the --help text and the comments of conf/ (--help prints their first lines)."""
    from brittle.cli.help import help_text
    texts = {str(p.relative_to(ROOT)): p.read_text() for p in PAGES}
    texts["--help"] = help_text()
    texts.update({str(p.relative_to(ROOT)): p.read_text() for p in sorted(CONF.rglob("*.yaml"))})
    return texts


def test_no_documented_command_needs_a_plus():
    added = [f"{name}: +{key}" for name, text in _texts().items()
             for key in ADDED.findall(text) if not key.startswith("hydra.")]
    assert not added, f"written in conf/, these are set without `+`: {added}"


def _composed_settings() -> set[str]:
    """Every dotted setting of every group option's composed config (experiments left out: a
    setting is an option's, not a preset's)."""
    from brittle.cli.configs import groups
    from tests.helpers import make_cfg

    def paths(node, prefix=""):
        for key, value in node.items():
            yield f"{prefix}{key}"
            if isinstance(value, dict):
                yield from paths(value, f"{prefix}{key}.")
    found: set[str] = set()
    for group, options in groups(CONF).items():
        for option in options if group != "experiment" else ():
            cfg = make_cfg([f"{group}={option}"])
            found.update(paths(OmegaConf.to_container(cfg, resolve=False)))
    return found


@pytest.mark.heavy
def test_every_setting_the_docs_and_help_name_is_in_the_config():
    settings = _composed_settings()
    tops = {s for s in settings if "." not in s} - {"hydra"}
    named = {(name, key) for name, text in _texts().items() for key in SETTING.findall(text)
             if key.split(".")[0] in tops and key.rsplit(".", 1)[1] not in FILES}
    # `source_arch` takes an arch option (arch@source_arch=...)
    missing = sorted(f"{name}: {key}" for name, key in named if key not in settings
                     and key.replace("source_arch.", "arch.", 1) not in settings)
    assert not missing, f"named but in no option's composed config: {missing}"


@pytest.mark.heavy
def test_the_your_model_page_runs_as_written(tmp_path, monkeypatch):
    """docs/your-model.md's Python, block after block in one namespace (its modules importable),
    in a scratch working directory: its searches find supports and resume from their log."""
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "docs" / "your-model.md").read_text()
    scope: dict = {}
    for block in python_blocks(text):
        if not re.fullmatch(r"# \w+\.py", block.splitlines()[0]):
            exec(compile(block, "docs/your-model.md", "exec"), scope)  # noqa: S102
    assert (scope["found"].table["support"] >= 0).any()
    assert "holds" in scope["relabelled"].table.columns
    again = scope["find_supports"](scope["train_and_judge"], scope["targets"], scope["y_train"],
                                   scope["y_test"][scope["targets"]], rankings=scope["topk"],
                                   budget=3, n_test=3, max_support=128,
                                   directory="supports/torch")
    assert again.trained == 0 and again.table.equals(scope["found"].table)
