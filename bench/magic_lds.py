"""LDS of MAGIC beside ESVM, TRAK and sign estimation alone on digits, in both LDS settings, over
several seeds and every eligible target (docs/lds.md, docs/scorers.md).

Settings (brittle/eval/lds.py `order`): `independent`, brittle's LDS (each subset model trained
with its own seed and data order, the 'lds' bank), and `same_order`, MAGIC's single-model
setting (every subset model the run's single seeded run with the removed images weighted 0, the
'lds_same_order' bank), each at the kept fractions `--alphas` (0.99: 1% removed). Per seed: the
default digits run's reference models pick the targets (every test image they classify
correctly), then per method its attributions once and its LDS on every bank, exactly as the LDS
stage scores them (each scorer's own sparsity: ESVM top 5%, MAGIC and TRAK dense). MAGIC (1) is
the single run's metagradient alone; MAGIC (3) averages three seeds (scorer=magic's default).

Why MAGIC may fall short of an LDS near 1 in the single-model setting: `--smooth` repeats MAGIC
(1) in that setting under another recipe (default `arch.recipe.lr=0.02`), with each recipe's test
accuracy; and per recipe a metasmoothness probe (float64, `--probe-targets` targets): along a
random 1% removal direction d, the finite difference (m(1 + eps d) - m(1)) / eps against the
metagradient's g.d, mean relative error at each eps. The metagradient is exact (eps 1e-6 agrees
to rounding); where larger eps disagree, the margin is not smooth in the data weights.

    .venv/bin/python bench/magic_lds.py [--seeds 0 1 2] [--n-models 100]
    .venv/bin/python bench/magic_lds.py --smoke --cache /tmp/c   # seconds-sized, for tests

Figures go to bench/results/magic_lds.json (bench/record.py) with machine, date, commit.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import Record, add_arguments, add_cache_argument  # noqa: E402
from brittle import api  # noqa: E402
from brittle.eval.lds import LinearDatamodelingScore, sign_alone  # noqa: E402
from brittle.eval.stats import bootstrap_ci  # noqa: E402
from brittle.retrain.metagradient import forward, margins, metagradients  # noqa: E402
from brittle.retrain.weighted import WeightedRun  # noqa: E402
from brittle.runtime.execution import execution_of  # noqa: E402
from brittle.scorers.base import TargetSet, TrainSet  # noqa: E402
from brittle.scorers.esvm.scorer import ExemplarSVM  # noqa: E402
from brittle.scorers.magic import Magic  # noqa: E402
from brittle.scorers.trak import Trak  # noqa: E402
from brittle.stages import reference  # noqa: E402
from brittle.stages.keys import select  # noqa: E402
from brittle.stages.targets import select_targets  # noqa: E402

SMOKE = ["backbone.epochs=1", "reference.n_models=1", "arch.recipe.epochs=2"]
EPSILONS = (1.0, 0.1, 0.01, 1e-3, 1e-4, 1e-6)


def _cfg(seed: int, cache: str, extra: list[str]):
    from hydra import compose, initialize_config_dir

    from brittle.cli.resolvers import register_resolvers
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config",
                       overrides=[f"seed={seed}", f"cache_dir={cache}", *extra])


def _magic(engine, seed: int, n_models: int, targets: TargetSet) -> list[np.ndarray]:
    """Each of scorer=magic's seeds' metagradients float [T, N] (the first: the single run)."""
    ones = torch.ones(engine.train_x.shape[0])
    ids = torch.as_tensor(targets.ids)
    tx, ty = engine.test_x[ids], torch.as_tensor(np.array(engine.test_y[targets.ids]))
    out = []
    for s in Magic(n_models=n_models, seed=seed).seeds():
        run = WeightedRun(engine.build, engine.trainer.recipe, engine.train_x, engine.train_y, s)
        grads = [metagradients(run, ones, tx[lo:lo + 64], ty[lo:lo + 64], forward(run, ones))
                 for lo in range(0, len(ids), 64)]
        out.append(torch.cat(grads).double().numpy())
    return out


def attributions(cfg, data, engine, targets: TargetSet) -> dict[str, tuple[np.ndarray, float]]:
    """Per method: signed attributions float [T, N] and the fraction of |tau| its LDS keeps."""
    feats = api.embed(cfg, data, api.pretrain(cfg, data))
    esvm = ExemplarSVM()
    esvm.prepare(TrainSet(data.train.labels, feats.train), None, torch.device("cpu"))
    q = TargetSet(targets.ids, targets.labels, feats.test[targets.ids])
    esvm_scores = esvm.scores(q)
    out = {"ESVM MoCo": (esvm.attributions(esvm_scores, q), esvm.lds_sparsity)}
    esvm.other_classes = "zero"
    out["ESVM MoCo (other classes 0)"] = (esvm.attributions(esvm_scores, q), esvm.lds_sparsity)
    trak = Trak(n_models=int(cfg.trak_sizes.n_models), proj_dim=int(cfg.trak_sizes.proj_dim))
    trak.prepare(TrainSet(data.train.labels), api.scorer_models(cfg, engine, trak),
                 torch.device("cpu"))
    out[f"TRAK d={trak.proj_dim} ({trak.n_models})"] = (trak.scores(targets), 1.0)
    runs = _magic(engine, int(cfg.seed), 3, targets)
    out["MAGIC (1)"] = (runs[0], 1.0)
    out["MAGIC (3)"] = (np.mean(runs, axis=0), 1.0)
    return out


def configs(seed: int, args: argparse.Namespace) -> dict[str, object]:
    """The seed's composed configs, the default recipe's and the `--smooth` one's: composed before
    any work, so the bench's figures all come from the configuration it started with."""
    base = SMOKE if args.smoke else []
    return {"default recipe": _cfg(seed, args.cache, base),
            f"recipe {args.smooth}": _cfg(seed, args.cache, [*base, args.smooth])}


def one_seed(cfg, args: argparse.Namespace) -> dict[str, dict[str, np.ndarray]]:
    """Per setting ('same_order a=0.99', ...) and method: the LDS per target float [T]."""
    data = api.load_data(cfg)
    engine = api.build_engine(cfg, data)
    probs = reference.run(select(cfg, reference.DEPENDS_ON), execution_of(cfg, Path(".")), engine)
    eligible = int((probs.mean(0).argmax(1) == data.test.labels).sum())
    cfg.targets.n = eligible if args.targets == "all" else min(int(args.targets), eligible)
    ids = select_targets(cfg.targets, data, probs.mean(0))
    targets = TargetSet(ids, data.test.labels[ids])
    taus = attributions(cfg, data, engine, targets)
    out = {}
    for order in ("independent", "same_order"):
        for alpha in args.alphas:
            ev = LinearDatamodelingScore(n_models=args.n_models, alpha=alpha, order=order)
            bank = api.bank(cfg, engine, args.n_models, alpha, ev.purpose)
            margins_t = bank.margins[:, ids]
            rows = {name: ev.score(bank.masks, margins_t, tau, sparsity)
                    for name, (tau, sparsity) in taus.items()}
            rows["sign estimation alone"] = sign_alone(bank.masks, margins_t, data.train.labels,
                                                       targets.labels)
            out[f"{order} a={alpha}"] = rows
    return out


def smooth_and_probe(seed: int, cfgs: dict, args: argparse.Namespace) -> dict[str, object]:
    """MAGIC (1) in the single-model setting under the `--smooth` recipe, both recipes' test
    accuracy (the single run's model) and their metasmoothness probe."""
    figures: dict[str, object] = {}
    for name, cfg in cfgs.items():
        data = api.load_data(cfg)
        engine = api.build_engine(cfg, data)
        run = WeightedRun(engine.build, engine.trainer.recipe, engine.train_x, engine.train_y,
                          Magic(seed=seed).seeds()[0])
        final, _ = run.run(torch.ones(engine.train_x.shape[0]))
        with torch.no_grad():
            accuracy = run.module(final)(engine.test_x).argmax(1).numpy() == data.test.labels
        figures[f"seed {seed}: {name}: test accuracy"] = float(accuracy.mean())
        figures[f"seed {seed}: {name}: probe"] = probe(engine, seed, args.probe_targets)
        if name != "default recipe":
            ids = np.flatnonzero(np.asarray(accuracy))
            ids = ids if args.targets == "all" else ids[:int(args.targets)]
            targets = TargetSet(ids, data.test.labels[ids])
            tau = _magic(engine, seed, 1, targets)[0]
            for alpha in args.alphas:
                ev = LinearDatamodelingScore(n_models=args.n_models, alpha=alpha,
                                             order="same_order")
                bank = api.bank(cfg, engine, args.n_models, alpha, ev.purpose)
                values = ev.score(bank.masks, bank.margins[:, ids], tau, 1.0)
                figures[f"seed {seed}: {name}: same_order a={alpha}: MAGIC (1)"] = _cell(values)
    return figures


def probe(engine, seed: int, n_targets: int) -> dict[str, float]:
    """Mean |finite difference - g.d| / |g.d| over targets, per eps, in float64, along one
    random direction that removes 1% of the training images."""
    x = engine.train_x.double()
    run = WeightedRun(engine.build, engine.trainer.recipe, x, engine.train_y,
                      Magic(seed=seed).seeds()[0])
    ids = np.linspace(0, len(engine.test_y) - 1, n_targets).astype(int)
    tx, ty = engine.test_x[ids].double(), torch.as_tensor(np.array(engine.test_y[ids]))
    ones = torch.ones(x.shape[0], dtype=torch.float64)
    d = torch.zeros_like(ones)
    d[np.random.default_rng(seed).choice(x.shape[0], max(1, x.shape[0] // 100), replace=False)] = -1
    slope = metagradients(run, ones, tx, ty) @ d

    def margin(w: torch.Tensor) -> torch.Tensor:
        final, _ = run.run(w)
        return margins(run.logits(final.params, tx), ty).detach()

    base = margin(ones)
    return {f"eps {eps:g}": float(((margin(ones + eps * d) - base) / eps - slope).abs().mean()
                                  / slope.abs().mean()) for eps in EPSILONS}


def _cell(values: np.ndarray) -> dict[str, float]:
    lo, hi = bootstrap_ci(values, np.mean)
    return {"mean": float(values.mean()), "lo": lo, "hi": hi, "targets": len(values)}


def table(results: dict[int, dict[str, dict[str, np.ndarray]]]) -> str:
    """Markdown: a row per method, a column per setting (mean over seeds of the mean LDS)."""
    seeds = sorted(results)
    settings = list(results[seeds[0]])
    head = ["LDS (mean of seeds)", *settings]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in results[seeds[0]][settings[0]]:
        cells = [np.mean([results[s][k][row].mean() for s in seeds]) for k in settings]
        lines.append(f"| {row} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-models", type=int, default=100)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.99, 0.95, 0.5])
    parser.add_argument("--targets", default="all", help="targets per seed: all (eligible) or N")
    parser.add_argument("--smooth", default="arch.recipe.lr=0.02",
                        help="the other recipe of MAGIC's single-model check (an override)")
    parser.add_argument("--probe-targets", type=int, default=10)
    add_cache_argument(parser)
    add_arguments(parser)   # --smoke: toy sizes; --out
    args = parser.parse_args(argv)
    record = Record("magic_lds", args)
    if args.smoke:
        args.n_models, args.targets, args.probe_targets = 4, "6", 2
    cfgs = {seed: configs(seed, args) for seed in args.seeds}
    results = {}
    for seed in args.seeds:
        results[seed] = one_seed(cfgs[seed]["default recipe"], args)
        record.add(**{f"seed {seed}: {k}: {row}": _cell(v) for k, rows in results[seed].items()
                      for row, v in rows.items()})
        record.add(**smooth_and_probe(seed, cfgs[seed], args))
    print(table(results))
    record.add(n_models=args.n_models, alphas=args.alphas, smooth=args.smooth)
    record.done()
    return 0


if __name__ == "__main__":
    sys.exit(main())
