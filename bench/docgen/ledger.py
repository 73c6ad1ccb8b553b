"""docs/reproduction.md: each claim of the paper, the preset that runs it, and its status:
reproduced (brittle's numbers beside the paper's, from a results file), run at reduced scale
(what was reduced, and the numbers), or not yet run (the models brittle's cost model says it
trains, brittle/counterfactual/budget.py: TrainingPlan, and the GPU seconds a model when a GPU
results file holds them).

The paper's numbers are quoted with their place in the paper (its text's line numbers, as
docs/paper-presets.md cites them); brittle's come only from bench/results. A results file joins a
claim with a `reproduces` entry: {"claim": "table1", "scale": "what was reduced" or "paper",
"numbers": {name: figure key}}.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.docgen.results import Records, short_commit, without_paths

METHODS = {"esvm": "ESVM", "trak": "TRAK", "datamodels": "Datamodels"}


@dataclass(frozen=True)
class Claim:
    key: str
    what: str
    paper: str            # the paper's numbers with their place
    command: str          # the preset at the paper's scale
    sweep: tuple[tuple[str, ...], ...]   # the jobs (overrides) of that command, for the cost


_CIFAR = ("experiment=paper_cifar10",)
_FIG3 = tuple((*_CIFAR, *task, f"scorer={s}") for task in ((), ("task=mislabel",)) for s in METHODS)
CLAIMS = (
    Claim("fig3_remove", "Fig 3: removal support CDF of ESVM, TRAK, Datamodels",
          "flipped within 1280 removed: ours 55%, TRAK (20) 28%, Datamodels (10K) 31% (l. 192)",
          "python run.py -m experiment=paper_cifar10 scorer=esvm,trak,datamodels",
          _FIG3[:3]),
    Claim("fig3_mislabel", "Fig 3: mislabel support CDF of ESVM, TRAK, Datamodels",
          "flipped within 30 mislabelled: ours 47%, TRAK (100) 20%, Datamodels (300K) 50% "
          "(l. 194)",
          "python run.py -m experiment=paper_cifar10 task=mislabel scorer=esvm,trak,datamodels",
          _FIG3[3:]),
    Claim("fig4", "Fig 4: per target, ESVM's support against Datamodels' and TRAK's",
          "mislabel: ours smaller than Datamodels for 32%, than TRAK for 79% of targets; removal: "
          "smaller than Datamodels (50K) for 16% (l. 196, l. 216)",
          "python run.py -m experiment=paper_cifar10 task=remove,mislabel "
          "scorer=esvm,trak,datamodels && make figures", _FIG3),
    Claim("table1", "Table 1: LDS of ESVM, TRAK, Datamodels",
          "ours (1) 0.08; TRAK (5) 0.08, (100) 0.22; Datamodels (10K) 0.24, (300K) 0.56 "
          "(Table 1, l. 298)",
          "python run.py -m experiment=paper_cifar10 eval=lds scorer=esvm,trak,datamodels",
          tuple((*_CIFAR, "eval=lds", f"scorer={s}") for s in METHODS)),
    Claim("table2", "Table 2: removal AUC with scores transferred to other archs",
          "ours: ResNet-9 0.313, ViT 0.478, Swin-T 0.517, MLP-Mixer 0.506, ConvMixer 0.324 "
          "(Table 2, l. 595)",
          "python run.py -m experiment=paper_transfer arch=vit,swin_t_cifar,mlpmixer,convmixer "
          "scorer=esvm,trak,datamodels",
          tuple(("experiment=paper_transfer", f"arch={a}", f"scorer={s}")
                for a in ("vit", "swin_t_cifar", "mlpmixer", "convmixer") for s in METHODS)),
    Claim("fig5", "Fig 5: removal support on MobileNetV2 with ResNet-9 scores",
          "curves only: ours above TRAK (100) and Datamodels (50K) (l. 251)",
          "python run.py -m experiment=paper_transfer scorer=esvm,trak,datamodels",
          tuple(("experiment=paper_transfer", f"scorer={s}") for s in METHODS)),
    Claim("fig6", "Fig 6: removal support on ImageNet, ESVM against TRAK (4)",
          "curves only: ours tighter than TRAK (4) on 30 targets (l. 249)",
          "python run.py -m experiment=paper_imagenet scorer=esvm,trak",
          tuple(("experiment=paper_imagenet", f"scorer={s}") for s in ("esvm", "trak"))),
)


def _digits(records: Records) -> list[dict[str, Any]]:
    record = records.get("digits_compare")
    return [] if record is None else list(record["figures"]["runs"])


def _run(runs: list[dict[str, Any]], option: str, task: str) -> dict[str, Any] | None:
    return next((r for r in runs if r.get("option") == option and r["task"] == task), None)


def _flipped(runs: list[dict[str, Any]], task: str) -> str:
    cells = [f"{METHODS[o]} {r['n_flipped']}/{r['n_targets']} (AUC {r['auc']:.3f})"
             for o in METHODS if (r := _run(runs, o, task))]
    k = next((r["max_support"] for r in runs), "K")
    return f"flipped within {k}: " + ", ".join(cells) if cells else ""


def _per_target(runs: list[dict[str, Any]]) -> str:
    from brittle.eval.stats import paired_sign_test
    parts = []
    for task in ("mislabel", "remove"):
        ours = _run(runs, "esvm", task)
        for other in ("datamodels", "trak"):
            theirs = _run(runs, other, task)
            if ours is None or theirs is None:
                continue
            common = sorted(set(ours["supports"]) & set(theirs["supports"]))
            test = paired_sign_test([ours["supports"][t] for t in common],
                                    [theirs["supports"][t] for t in common], ours["max_support"])
            parts.append(f"{task}: smaller than {METHODS[other]} for {test['smaller']} of "
                         f"{len(common)}, equal {test['equal']}")
    return "; ".join(parts)


def _lds(runs: list[dict[str, Any]]) -> str:
    cells = [f"{METHODS[o]} ({r['scorer_models']}) {r['lds']:.3f}"
             for o in METHODS if (r := _run(runs, o, "remove")) and r.get("lds") is not None]
    alone = next((r["lds_sign_alone"] for r in runs if r.get("lds_sign_alone") is not None), None)
    return ", ".join(cells) + ("" if alone is None else f"; sign estimation alone {alone:.3f}")


def _seed_means(record: dict[str, Any], keep: str = "") -> str:
    """'label mean' over the seeds of a record of 'seed S: label' figures (each a mean with its
    interval), for the labels containing `keep`."""
    import re
    sums: dict[str, list[float]] = {}
    for name, value in record["figures"].items():
        found = re.fullmatch(r"seed (\d+): (.+)", name)
        if found and isinstance(value, dict) and "mean" in value and keep in found.group(2):
            sums.setdefault(found.group(2), []).append(float(value["mean"]))
    seeds = max((len(v) for v in sums.values()), default=0)
    cells = ", ".join(f"{label} {sum(v) / len(v):.3f}" for label, v in sums.items())
    return f"means over {seeds} seeds: {cells}"


# results files of LDS studies on digits beyond the comparison, and which of their rows to show
LDS_STUDIES = {"lds_readings": ("the ESVM's readings of inverse distance", ""),
               "magic_lds": ("MAGIC beside ESVM and TRAK", "a=0.5:")}


def _lds_studies(records: Records) -> list[list[str]]:
    claim = next(c for c in CLAIMS if c.key == "table1")
    out = []
    for bench, (what, keep) in LDS_STUDIES.items():
        record = records.get(bench)
        if record is not None:
            out.append([claim.what, claim.paper, f"`{without_paths(str(record.get('command')))}`",
                        f"run at reduced scale: digits, {what}",
                        f"{_seed_means(record, keep)} (`{record['file']}`, commit "
                        f"{short_commit(record)})"])
    return out


REDUCED = {"fig3_remove": lambda runs: _flipped(runs, "remove"),
           "fig3_mislabel": lambda runs: _flipped(runs, "mislabel"),
           "fig4": _per_target, "table1": _lds}


def reduction(records: Records) -> str:
    """What the digits comparison reduced, from its file."""
    runs = _digits(records)
    models = ", ".join(f"{METHODS[o]} {r['scorer_models']}" for o in METHODS
                       if (r := _run(runs, o, "remove")))
    return (f"digits (8x8, CPU) for CIFAR-10; an MLP retrained for ResNet-9; MoCo on a small "
            f"CNN; K = {runs[0]['max_support']} for 1280; {runs[0]['n_targets']} targets for 100; "
            f"models per method: {models}")


def cost(claim: Claim, records: Records) -> str:
    """At most how many models the preset's jobs train (brittle's TrainingPlan), and their GPU
    time when a GPU results file holds seconds a model."""
    from bench.docgen.costs import sweep_plan
    plan, backbone = sweep_plan(claim.sweep)
    text = (f"at most {plan.total:,} models ("
            + ", ".join(f"{p} {n:,}" for p, n in plan.parts.items() if n) + ")")
    if backbone:
        text += f", and {backbone}"
    return text + "; GPU seconds a model: not measured yet (`make gpu-check`)"


def rows(records: Records) -> list[list[str]]:
    """(claim, the paper, command, status, brittle's numbers) for every claim and scale."""
    out = []
    runs = _digits(records)
    digits = records.get("digits_compare")
    for claim in CLAIMS:
        if claim.key in REDUCED and digits is not None and runs:
            out.append([claim.what, claim.paper, "`python bench/digits_compare.py`",
                        f"run at reduced scale: {reduction(records)}",
                        f"{REDUCED[claim.key](runs)} (`{digits['file']}`, commit "
                        f"{short_commit(digits)})"])
        out += [[claim.what, claim.paper, f"`{r['command']}`", r["status"], r["numbers"]]
                for r in joined(claim.key, records)]
        if claim.key == "table1":
            out += _lds_studies(records)
        if claim.sweep:
            out.append([claim.what, claim.paper, f"`{claim.command}`",
                        f"not yet run (GPU): {cost(claim, records)}", "-"])
    return out


def joined(key: str, records: Records) -> list[dict[str, str]]:
    """Rows of results files that name this claim in their `reproduces` entry."""
    out = []
    for record in records.values():
        entry = record.get("reproduces") or {}
        if entry.get("claim") != key:
            continue
        figures = record["figures"]
        numbers = ", ".join(f"{name} {figures[k]:.3f}" if isinstance(figures.get(k), float)
                            else f"{name} {figures.get(k)}"
                            for name, k in (entry.get("numbers") or {}).items())
        scale = entry.get("scale", "paper")
        status = "reproduced" if scale == "paper" else f"run at reduced scale: {scale}"
        out.append({"command": without_paths(str(record.get("command"))), "status": status,
                    "numbers": f"{numbers} (`{record['file']}`, commit {short_commit(record)})"})
    return out


def counts(records: Records) -> dict[str, int]:
    """Claims by their best status."""
    table = rows(records)
    best = {}
    for claim in CLAIMS:
        statuses = [r[3] for r in table if r[0] == claim.what]
        best[claim.key] = ("reproduced" if "reproduced" in statuses else "reduced"
                           if any(s.startswith("run at") for s in statuses) else "not yet run")
    return {s: sum(1 for v in best.values() if v == s)
            for s in ("reproduced", "reduced", "not yet run")}


def status_line(records: Records, link: str = "docs/reproduction.md") -> str:
    n = counts(records)
    return (f"**Reproduction status** ([{link}]({link})): of the paper's {len(CLAIMS)} claims "
            f"listed there, {n['reproduced']} reproduced at the paper's scale, {n['reduced']} run "
            f"only at reduced scale (digits, on a CPU), {n['not yet run']} not yet run; the "
            "paper-scale runs are GPU jobs.")


HEADER = """# Reproduction ledger

Generated by `make docs` (`bench/docs.py`, `bench/docgen/ledger.py`) from `bench/results/*.json`;
not edited by hand. One row per claim of *"A Simple and Efficient Baseline for Data Attribution on
Images"* and scale: the paper's number with its place in the paper's text (line numbers, as
[paper-presets.md](paper-presets.md) cites them), the command that runs it, and its status:
**reproduced** (brittle's number at the paper's scale), **run at reduced scale** (what was
reduced, and brittle's numbers), or **not yet run** (what it needs, from brittle's cost model:
`brittle/counterfactual/budget.py`'s `TrainingPlan` over the preset's jobs). Each of brittle's
numbers names its results file and commit; none is typed by hand.
"""


def page(records: Records) -> str:
    lines = [HEADER, "| claim | the paper | command | status | brittle |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
              for row in rows(records)]
    return "\n".join(lines) + "\n"
