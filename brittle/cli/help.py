"""`python run.py --help`: brittle's groups, their options with one line each (the first comment
of each option's YAML file), the common settings, and example commands."""
from __future__ import annotations

from pathlib import Path

from brittle.cli.configs import config_dir, groups

# (setting, the option file whose value is the default, what it does); values are read from conf/
COMMON = [
    ("seed", "config.yaml", "seed of every model, target choice and random order"),
    ("device", "config.yaml",
     "auto | cpu | cuda | cuda:N (where a run executes; not part of its identity)"),
    ("targets.n", "config.yaml", "test images to estimate support for"),
    ("search.max_support", "_common/search.yaml", "K: the largest support searched"),
    ("search.n_test", "_common/search.yaml", "models per counterfactual test"),
    ("search.budget", "_common/search.yaml", "bisection steps"),
    ("backbone.epochs", "_common/backbone_method.yaml", "pretraining epochs (every method)"),
    ("dataset.root", "dataset/cifar10.yaml",
     "CIFAR-10 batches folder, class-folder tree or .tar.gz"),
    ("cache_dir", "config.yaml",
     "cache of pretrained backbones, embeddings, models (or the BRITTLE_CACHE variable)"),
    ("progress", "config.yaml", "progress bars on a terminal, periodic log lines otherwise"),
    ("debug", "config.yaml", "full tracebacks instead of one-line errors"),
    ("pretrain_save_every", "config.yaml",
     "pretraining saves its state every N epochs; a killed run resumes there"),
]

# one example a string; the long ones in two pieces, the command and its comment
EXAMPLES = [
    "brittle                                               "
    "# the default job on digits (CPU, minutes)",
    "brittle -m scorer=esvm,l2,random task=remove,mislabel && python -m brittle.report",
    "brittle experiment=paper_cifar10 dataset.root=/path/to/cifar10   # the paper's protocol (GPU)",
    "brittle --config-dir ~/my-configs scorer=mine         "
    "# add your own config groups and options",
    "brittle scorer=precomputed scorer.path=mine.npz eval=lds   "
    "# evaluate scores your own code computed",
    "brittle -m arch=mlp,cnn scorer=trak arch@source_arch=mlp  "
    "# TRAK of MLPs searched with both archs",
]


def describe(option: Path, width: int = 110) -> str:
    """The first sentence of an option's opening comment (Hydra's package header skipped)."""
    words: list[str] = []
    for line in option.read_text().splitlines():
        line = line.strip()
        if not line.startswith("#"):
            if words:
                break
            continue
        if "@package" not in line:
            words.append(line.lstrip("# ").rstrip())
    text = " ".join(words)
    end = text.find(". ")
    text = text[:end + 1] if end >= 0 else text
    return text if len(text) <= width else text[:width - 3].rsplit(" ", 1)[0] + "..."


def default_of(key: str, option: str) -> str:
    """The value of `key` as the option file sets it."""
    from omegaconf import OmegaConf

    node = OmegaConf.load(config_dir() / option)
    local = key.split(".", 1)[1] if "/" in option else key  # a group file holds the group's keys
    value = OmegaConf.select(node, local, throw_on_resolution_failure=False)
    return ("null" if value is None else str(value).lower() if isinstance(value, bool)
            else str(value))


def help_text() -> str:
    lines = [
        "brittle: data brittleness estimates (which training images flip a prediction), checked",
        "by retraining. Usage: brittle [group=option ...] [key=value ...] [-m for sweeps]",
        "(in a checkout: python run.py ...)", "", "== Groups (group=option) =="]
    for name, options in groups().items():
        lines.append(f"{name}:")
        for option in options:
            lines.append(f"  {option:<18} {describe(config_dir() / name / f'{option}.yaml')}")
    lines += ["", "== Common settings (key=value; defaults shown) =="]
    lines += [f"  {f'{k}={default_of(k, o)}':<34} {v}" for k, o, v in COMMON]
    lines += ["", "== Examples =="] + [f"  {e}" for e in EXAMPLES]
    lines += [
        "",
        "Cost: before its first stage a run logs at most how many models it trains (targets x",
        "tests x n_test, plus reference, scorer and LDS-bank models not cached yet) and, when",
        "this arch and trainer were timed on this device before (cache_dir/timings.json), the",
        "time that implies; the first models trained refine it in the log (app.log in the",
        "run directory).",
        "", "brittle --cfg job prints the composed configuration; docs/README.md: the manual."]
    return "\n".join(lines)
