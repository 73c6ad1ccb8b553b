"""Benchmark: retraining speed and accuracy per arch and trainer, and N_test models trained
together vs one by one, all measured in this run.

Digits on this CPU with every arch; a CIFAR-10 subset from ../shared/data (when present) with
every arch at CPU-reduced widths; the counterfactual test of the default config (digits, MLP,
5 models) with the models stacked and in a loop. The last line is
`cf_test_seconds=<digits default, 5 models>`; the figures also go to bench/results/retrain.json
(bench/record.py). `--smoke`: the MLP and the CNN on digits for 2 epochs, no CIFAR-10.

    .venv/bin/python bench/retrain.py [--cifar-train 2000 --cifar-test 500] [--skip-cifar] [--smoke]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import Record, add_arguments  # noqa: E402
from brittle.api import build_engine, load_data  # noqa: E402
from brittle.cli.resolvers import register_resolvers  # noqa: E402
from brittle.counterfactual.runners import EngineRunner  # noqa: E402
from brittle.counterfactual.tasks import Remove  # noqa: E402
from brittle.counterfactual.tester import CounterfactualTester, TestLog  # noqa: E402

# (arch, overrides at CPU scale). The digits archs train with their own recipes; the transfer
# archs with trainer=cpu (their recipe, fewer epochs), narrowed where a full width is GPU work.
SMALL = {
    "resnet9": ["arch.model.width=16"],
    "airnet": ["arch.model.width=16"],
    "mobilenetv2": ["arch.model.width_mult=0.5"],
    "vit": ["arch.model.embed_dim=96", "arch.model.depth=4"],
    "swin_t": ["arch.model.embed_dim=48"],
    "mlpmixer": ["arch.model.embed_dim=128", "arch.model.num_blocks=4"],
    "convmixer": ["arch.model.dim=128", "arch.model.depth=4"],
}
# transformers from scratch on 1,437 images need more epochs and a higher lr than the rest
LONGER = {"vit": ["trainer.epochs=40", "arch.recipe.lr=3e-3"],
          "swin_t": ["trainer.epochs=40", "arch.recipe.lr=3e-3"]}
DIGITS = [("mlp", []), ("cnn", [])] \
    + [(a, ["trainer=cpu", "trainer.batch_size=64"] + LONGER.get(a, ["trainer.epochs=15"]) + o)
       for a, o in SMALL.items()] \
    + [("airnet", ["trainer=fast", "trainer.batch_size=128", "arch.model.width=32"])]
# MobileNetV2 keeps 32x32 maps through its first stages: the slowest arch here by far
CIFAR_SMALLER = {"mobilenetv2": ["arch.model.width_mult=0.25"]}
# 2,000 images: batches of 64 give the short runs enough steps
CIFAR = [(a, ["trainer=cpu", "trainer.epochs=6", "trainer.batch_size=64"] + CIFAR_SMALLER.get(a, o))
         for a, o in SMALL.items()] \
    + [("airnet", ["trainer=fast", "trainer.batch_size=128", "trainer.epochs=6",
                   "arch.model.width=32"])]


def cfg_for(overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def accuracy_row(name: str, overrides: list[str], base: list[str], record: Record,
                 where: str) -> None:
    cfg = cfg_for(base + [f"arch={name}"] + overrides)
    engine = build_engine(cfg, load_data(cfg))
    start = time.perf_counter()
    model = engine.train(engine.full_keep(), engine.train_y, seed=0)
    seconds = time.perf_counter() - start
    predicted = engine.logits(model, engine.test_x).argmax(1).cpu().numpy()
    acc = float((predicted == engine.test_y).mean())
    trainer = next((o.split("=")[1] for o in overrides if o.startswith("trainer=")), "arch_recipe")
    settings = " ".join(o for o in overrides if not o.startswith("trainer="))
    print(f"  {name:<12} trainer={trainer:<5} {len(engine.train_y):>6} imgs  "
          f"{seconds:7.1f} s/model  test acc {acc:.3f}   {settings}", flush=True)
    key = f"{where}_{name}_{trainer}"
    record.add(**{f"{key}_seconds_per_model": seconds, f"{key}_test_accuracy": acc,
                  f"{key}_settings": " ".join(overrides)})


def together_vs_loop(extra: list[str]) -> dict[str, float]:
    """Seconds of one counterfactual test (digits default, 5 models): stacked and loop."""
    cfg = cfg_for(extra)
    engine = build_engine(cfg, load_data(cfg))
    ranking = np.arange(64)
    timings = {}
    for mode in ("loop", "auto", "loop", "auto"):   # twice each, interleaved: the 2nd is kept
        engine.trainer.together = mode
        with tempfile.TemporaryDirectory() as tmp:
            tester = CounterfactualTester(EngineRunner(engine, Remove()),
                                          TestLog(Path(tmp) / "t.jsonl"), seed=0,
                                          n_test=5)   # a full test: all 5 models
            start = time.perf_counter()
            tester.accuracy(0, ranking, 64, None)
            timings[mode] = time.perf_counter() - start
    print("counterfactual test, digits default (MLP, 5 models): one by one "
          f"{timings['loop']:.2f} s, stacked {timings['auto']:.2f} s "
          f"({timings['loop'] / timings['auto']:.1f}x)")
    return {"cf_test_seconds": timings["auto"], "cf_test_seconds_one_by_one": timings["loop"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cifar-train", type=int, default=2000)
    parser.add_argument("--cifar-test", type=int, default=500)
    parser.add_argument("--skip-cifar", action="store_true")
    add_arguments(parser)
    args = parser.parse_args()
    record = Record("retrain", args)
    smoke = ["arch.recipe.epochs=2"] if args.smoke else []
    print("digits (1,437 train / 360 test), CPU:")
    for name, overrides in DIGITS[:2] if args.smoke else DIGITS:
        accuracy_row(name, overrides + smoke, [], record, "digits")
    tgz = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
    if args.skip_cifar or args.smoke or not tgz.exists():
        print(f"CIFAR-10 subset skipped ({f'{tgz} not found' if not tgz.exists() else 'asked'})")
    else:
        print(f"CIFAR-10 subset ({args.cifar_train:,} train / {args.cifar_test:,} test), CPU:")
        base = ["dataset=cifar10", f"dataset.root={tgz}",
                f"dataset.train_subset={args.cifar_train}",
                f"dataset.test_subset={args.cifar_test}"]
        for name, overrides in CIFAR:
            accuracy_row(name, overrides, base, record, "cifar10")
    figures = together_vs_loop(smoke)
    record.add(**figures)
    print(f"cf_test_seconds={figures['cf_test_seconds']:.2f}")
    record.done()


if __name__ == "__main__":
    main()
