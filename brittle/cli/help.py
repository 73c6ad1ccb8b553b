"""`python run.py --help`: brittle's groups, their options with one line each (the first comment
of each option's YAML file), the common settings, and example commands."""
from __future__ import annotations

from pathlib import Path

CONF = Path(__file__).resolve().parents[2] / "conf"

COMMON = [
    ("seed=0", "seed of every model, target choice and random order"),
    ("device=auto", "auto | cpu | cuda | cuda:N (where a run executes; not part of its identity)"),
    ("targets.n=10", "test images to estimate support for"),
    ("search.max_support=128", "K: the largest support searched"),
    ("search.n_test=5 search.budget=7", "models per counterfactual test; bisection steps"),
    ("backbone.epochs=30", "pretraining epochs"),
    ("dataset.root=/path/to/cifar10", "CIFAR-10 batches folder, class-folder tree or .tar.gz"),
    ("cache_dir=.cache/brittle", "cache of pretrained backbones, embeddings, models (or the BRITTLE_CACHE variable)"),
    ("progress=true", "progress bars on a terminal, periodic log lines otherwise"),
    ("debug=true", "full tracebacks instead of one-line errors"),
]

EXAMPLES = [
    "python run.py                                         # the default job on digits (CPU, ~1 min)",
    "python run.py -m scorer=esvm,l2,random task=remove,mislabel && make figures",
    "python run.py experiment=paper_cifar10 dataset.root=/path/to/cifar10   # the paper's protocol (GPU)",
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


def help_text() -> str:
    lines = ["brittle: data brittleness estimates (which training images flip a prediction), checked",
             "by retraining. Usage: python run.py [group=option ...] [key=value ...] [-m for sweeps]", "",
             "== Groups (group=option) =="]
    for group in sorted(p for p in CONF.rglob("*") if p.is_dir() and "hydra" not in p.parts):
        name = str(group.relative_to(CONF))
        lines.append(f"{name}:")
        for option in sorted(group.glob("*.yaml")):
            lines.append(f"  {option.stem:<18} {describe(option)}")
    lines += ["", "== Common settings (key=value; defaults shown) =="]
    lines += [f"  {k:<34} {v}" for k, v in COMMON]
    lines += ["", "== Examples =="] + [f"  {e}" for e in EXAMPLES]
    lines += ["", "python run.py --cfg job prints the composed configuration; README.md has the rest."]
    return "\n".join(lines)
