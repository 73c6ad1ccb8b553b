"""LDS of the ESVM under each reading of the paper's "inverse distance", beside sign estimation
alone, on digits over several seeds (docs/lds.md).

Per seed: the default digits run's backbone, reference models and LDS bank (`eval=lds` with
`eval.n_models`; all cached, shared with `python run.py ... eval=lds seed=S`), the targets the
pipeline's rule picks (`targets.only_correct`, class-balanced; `--targets all`: every eligible
test image), the ESVM's decision values for them, and then without any retraining the LDS of:
each `scorer.magnitude` reading (brittle/scorers/magnitude.py) under the paper's sign rule, from
the ranking's SVM (trained against the target's class) and from one trained against every
training image (`scorer.lds_negatives=all`, section 3's text), the
paper's reading with other classes 0, the l2 scorer (paper's reading), the random scorer (random
magnitudes, sign rule, top 5%) and sign estimation alone (brittle/eval/lds.py: sign_alone). Each
cell: mean LDS over targets [95% bootstrap interval]; then each row's paired difference to the
paper's reading. Also, per seed, where the paper's reading puts the 5% it keeps.

    .venv/bin/python bench/lds_readings.py [--seeds 0 1 2 3] [--n-models 60] [--targets all]
    .venv/bin/python bench/lds_readings.py --smoke --cache /tmp/c   # seconds-sized, for tests

Figures also go to bench/results/lds_readings.json (bench/record.py) with machine, date, commit.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import Record, add_arguments, add_cache_argument  # noqa: E402
from brittle import api  # noqa: E402
from brittle.eval.lds import lds, sign_alone, sparsify_top  # noqa: E402
from brittle.eval.stats import bootstrap_ci  # noqa: E402
from brittle.runtime.execution import execution_of  # noqa: E402
from brittle.scorers.base import TargetSet, TrainSet  # noqa: E402
from brittle.scorers.distance import Distance  # noqa: E402
from brittle.scorers.esvm.scorer import ExemplarSVM  # noqa: E402
from brittle.scorers.magnitude import CLIP, MAGNITUDES, PAPER  # noqa: E402
from brittle.scorers.random import RandomOrder  # noqa: E402
from brittle.stages import reference  # noqa: E402
from brittle.stages.keys import select  # noqa: E402
from brittle.stages.targets import select_targets  # noqa: E402

SMOKE = ["backbone.epochs=1", "reference.n_models=1", "arch.recipe.epochs=2"]
ROWS = [*(f"ESVM {m}" for m in MAGNITUDES),
        *(f"ESVM {m}, SVM against all images" for m in MAGNITUDES),
        f"ESVM {PAPER}, other classes 0", f"L2 {PAPER}", "Random (random magnitudes, top 5%)",
        "sign estimation alone"]


def _cfg(seed: int, cache: str, extra: list[str]):
    from hydra import compose, initialize_config_dir

    from brittle.cli.resolvers import register_resolvers
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        overrides = [f"seed={seed}", f"cache_dir={cache}", *extra]
        return compose(config_name="config", overrides=overrides)


def one_seed(seed: int, args: argparse.Namespace) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-target LDS float [T] of every row, and where the paper's reading puts its top 5%."""
    cfg = _cfg(seed, args.cache, SMOKE if args.smoke else [])
    data = api.load_data(cfg)
    feats = api.embed(cfg, data, api.pretrain(cfg, data))
    engine = api.build_engine(cfg, data)
    probs = reference.run(select(cfg, reference.DEPENDS_ON), execution_of(cfg, Path(".")), engine)
    eligible = int((probs.mean(0).argmax(1) == data.test.labels).sum())
    cfg.targets.n = eligible if args.targets == "all" else min(int(args.targets), eligible)
    ids = select_targets(cfg.targets, data, probs.mean(0))
    bank = api.bank(cfg, engine, args.n_models, 0.5, "lds")
    masks, margins = bank.masks, bank.margins[:, ids]
    q = TargetSet(ids, data.test.labels[ids], feats.test[ids])
    esvm = ExemplarSVM()
    esvm.prepare(TrainSet(data.train.labels, feats.train), None, esvm.device)
    scores = esvm.scores(q)
    out, taus = {}, {}
    for negatives, suffix in (("pool", ""), ("all", ", SVM against all images")):
        esvm.lds_negatives = negatives
        for m in MAGNITUDES:
            esvm.magnitude = m
            taus[m + suffix] = esvm.attributions(scores, q)
            out[f"ESVM {m}{suffix}"] = _lds(masks, margins, taus[m + suffix])
    esvm.lds_negatives, esvm.magnitude, esvm.other_classes = "pool", PAPER, "zero"
    out[f"ESVM {PAPER}, other classes 0"] = _lds(masks, margins, esvm.attributions(scores, q))
    l2 = Distance("l2", magnitude=PAPER)
    l2.prepare(TrainSet(data.train.labels, feats.train), None, esvm.device)
    out[f"L2 {PAPER}"] = _lds(masks, margins, l2.attributions(l2.scores(q), q))
    rand = RandomOrder(seed=seed)
    rand.prepare(TrainSet(data.train.labels), None, esvm.device)
    out[ROWS[-2]] = _lds(masks, margins, rand.attributions(rand.scores(q), q))
    out[ROWS[-1]] = sign_alone(masks, margins, data.train.labels, q.labels)
    return out, _where_top(taus[PAPER], scores, data.train.labels, q.labels)


def _lds(masks: np.ndarray, margins: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """The LDS stage's score: top 5% of |tau| kept (the paper's), constant margins scoring 0."""
    return np.nan_to_num(lds(masks, margins, sparsify_top(tau, 0.05)), nan=0.0)


def _where_top(tau: np.ndarray, scores: np.ndarray, train_labels: np.ndarray,
               labels: np.ndarray) -> dict[str, float]:
    """Of the images the paper's reading keeps (its attributions tau [T, N], top 5%): the
    fraction of the target's class, and at the clip; the images per target at the clip (decision
    >= -1e-3), by class."""
    same = train_labels[None, :] == labels[:, None]
    clipped = scores >= -CLIP
    kept = sparsify_top(tau, 0.05) != 0
    return {"kept_same_class": float((kept & same).sum() / kept.sum()),
            "kept_at_clip": float((kept & clipped).sum() / kept.sum()),
            "clipped_other_per_target": float((clipped & ~same).sum(1).mean()),
            "clipped_same_per_target": float((clipped & same).sum(1).mean())}


def _cell(v: np.ndarray) -> str:
    lo, hi = bootstrap_ci(v, np.mean)
    return f"{v.mean():.3f} [{lo:.3f}, {hi:.3f}]"


def table(results: dict[int, dict[str, np.ndarray]]) -> str:
    """Markdown: a row per reading, a column per seed (mean [95% CI], targets), their mean; then
    each row's paired difference to the paper's reading (per target, same targets and bank)."""
    seeds = sorted(results)
    head = ["LDS (top 5%)", *(f"seed {s} ({len(results[s][ROWS[0]])} targets)" for s in seeds),
            "mean of seeds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    paper = f"ESVM {PAPER}"
    for row in ROWS:
        cells = [_cell(results[s][row]) for s in seeds]
        mean = np.mean([results[s][row].mean() for s in seeds])
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {mean:.3f} |")
    for row in ROWS:
        if row == paper:
            continue
        diffs = [results[s][row] - results[s][paper] for s in seeds]
        mean = np.mean([d.mean() for d in diffs])
        lines.append(f"| {row} minus {paper} | " + " | ".join(_cell(d) for d in diffs)
                     + f" | {mean:+.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--n-models", type=int, default=60)
    parser.add_argument("--targets", default="all", help="targets per seed: all (eligible) or N")
    add_cache_argument(parser)
    add_arguments(parser)   # --smoke: 1 pretraining epoch, 4 models, 20 targets; --out
    args = parser.parse_args(argv)
    record = Record("lds_readings", args)
    if args.smoke:
        args.n_models, args.targets = 4, "20"
    results, where = {}, {}
    for seed in args.seeds:
        results[seed], where[seed] = one_seed(seed, args)
    print(table(results))
    print()
    for seed in args.seeds:
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in where[seed].items()))
    record.add(**figures(results, where), n_models=args.n_models)
    record.done()
    return 0


def figures(results: dict[int, dict[str, np.ndarray]], where: dict[int, dict[str, float]]
            ) -> dict[str, object]:
    """The results file's figures: per seed and row the mean LDS, its 95% interval and targets;
    per seed where the paper's reading puts its top 5%."""
    out: dict[str, object] = {}
    for seed, rows in results.items():
        for row, values in rows.items():
            lo, hi = bootstrap_ci(values, np.mean)
            out[f"seed {seed}: {row}"] = {"mean": float(values.mean()), "lo": lo, "hi": hi,
                                          "targets": len(values)}
        out.update({f"seed {seed}: {k}": v for k, v in where[seed].items()})
    return out


if __name__ == "__main__":
    sys.exit(main())
