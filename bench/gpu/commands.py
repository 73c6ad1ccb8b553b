"""Parts of the GPU check that run what users type, each as its own process through the real
command line, their figures read from the run's own records (records.py):

- default_job: `python run.py device=auto` (digits), from an empty cache;
- design_card: the design card's command on full CIFAR-10 (`experiment=cifar10_fast
  task=mislabel ...`), with every stage's seconds;
- paper_recipe: the paper presets' network and recipe (`experiment=paper_cifar10`: FFCV's
  ResNet-9, trainer=paper) as the run's reference models train it: seconds a model, accuracy;
- search_bench: `bench/search.py`, its default case for one round;
- magic_resnet9: `scorer=magic` on the paper preset's ResNet-9 (BatchNorm) and recipe in fp32,
  shortened to two epochs: MAGIC's scoring seconds and memory on a GPU-sized arch.
"""
from __future__ import annotations

import json
from typing import Any

from bench.gpu.common import TINY_SETS, Context, merged, run_command
from bench.gpu.records import run_figures, short

# A whole digits run in seconds on a CPU (tests/helpers.py's TINY)
TINY_DIGITS = ["backbone.epochs=1", "targets.n=2", "search.budget=2", "search.n_test=2",
               "search.max_support=16", "reference.n_models=1", "arch.recipe.epochs=4"]
# A CIFAR-10 run at toy size on a CPU: 200 / 100 images (TINY_SETS), an eighth-wide ResNet-18
# for one epoch, an 8-wide airnet for one epoch, 2 targets of one test or two
TINY_CIFAR = ["backbone.epochs=1", "backbone.batch_size=32", "backbone.memory_bank=64",
              "backbone.knn_every=0", "backbone.net.width=0.125", "trainer.epochs=1",
              "trainer.batch_size=100", "arch.model.width=8", "targets.n=2",
              "targets.only_correct=false", "search.budget=1", "search.max_support=16",
              "reference.n_models=1"]
DESIGN_CARD = ["experiment=cifar10_fast", "task=mislabel", "backbone.epochs=2", "targets.n=5",
               "search.budget=4", "search.n_test=1", "reference.n_models=2"]
# The paper preset's retraining alone: the random order needs no backbone, so the run trains
# its reference model and the search's two models, FFCV's ResNet-9 with the paper's recipe
PAPER_RECIPE = ["experiment=paper_cifar10", "scorer=random", "reference.n_models=1", "targets.n=1",
                "search.budget=1", "search.n_test=1"]
# MAGIC's metagradients through the paper preset's network (BatchNorm) and recipe, fp32 (the
# replay's precision), two epochs: one run of the metagradients for two targets
MAGIC_RESNET9 = ["experiment=paper_cifar10", "scorer=magic", "scorer.n_models=1",
                 "trainer.recipe.precision=fp32", "trainer.recipe.epochs=2",
                 "reference.n_models=1", "targets.n=2", "search.budget=1", "search.n_test=1"]
TINY_PAPER = ["trainer.recipe.epochs=1", "trainer.recipe.batch_size=100", "arch.model.width=8",
              "source_arch.model.width=8", "targets.only_correct=false", "search.max_support=16"]


def _run(ctx: Context, name: str, overrides: list[str], cache: str | None = None,
         timeout: float | None = None) -> dict[str, Any]:
    """`python run.py OVERRIDES` into work/NAME, then its records."""
    run_dir = ctx.work / name
    where = [f"hydra.run.dir={run_dir}", "progress=false"]
    if cache is not None:
        where.append(f"cache_dir={cache}")
    done = run_command(ctx, name, ["run.py", *overrides, *where], timeout)
    return {"command": done.command, "wall_seconds": done.seconds, **run_figures(run_dir)}


def default_job(ctx: Context) -> tuple[dict, str]:
    figures = _run(ctx, "default_job", ["device=auto", *(TINY_DIGITS if ctx.smoke else [])],
                   cache=str(ctx.work / "default-cache"))
    return figures, (f"{figures['wall_seconds']:.1f} s on {figures['device']} from an empty cache "
                     f"({short(figures['stage_seconds'])}); AUC {figures['auc']:.3f}")


def design_card(ctx: Context) -> tuple[dict, str]:
    root = f"dataset.root={ctx.need_cifar()}"
    tiny = [*TINY_SETS, *TINY_CIFAR] if ctx.smoke else []
    figures = _run(ctx, "design_card", merged(DESIGN_CARD, [root], tiny))
    return figures, (f"{figures['wall_seconds']:.1f} s ({short(figures['stage_seconds'])}); "
                     f"AUC {figures['auc']:.3f} over {figures['n_targets']} targets")


def paper_recipe(ctx: Context) -> tuple[dict, str]:
    import torch
    over = [f"dataset.root={ctx.need_cifar()}"]
    if ctx.smoke:
        over += [*TINY_SETS, *TINY_PAPER]
    if not torch.cuda.is_available():   # the paper recipe's fp16 is a GPU precision
        over.append("trainer.recipe.precision=fp32")
    figures = _run(ctx, "paper_recipe", merged(PAPER_RECIPE, over))
    stages, models = figures["stage_seconds"], figures["models_trained"]
    for stage in ("reference", "search"):   # one reference model: its accuracy is the run's
        figures[f"{stage}_seconds_per_model"] = (stages[stage] / models[stage]
                                                 if models.get(stage) else None)
    per = figures["reference_seconds_per_model"]
    return figures, ("FFCV ResNet-9, trainer=paper: "
                     + (f"{per:.1f} s a model (reference), " if per else "reference cached, ")
                     + f"{figures['search_seconds_per_model'] or float('nan'):.1f} s in the "
                     f"search, test accuracy {figures['reference_accuracy']:.4f}")


def search_bench(ctx: Context) -> tuple[dict, str]:
    out = ctx.work / "search_bench.json"
    size = ["--smoke"] if ctx.smoke else ["--rounds", "1", "--cases", "mlp_remove"]
    done = run_command(ctx, "search_bench", ["bench/search.py", *size, "--out", str(out)])
    figures = json.loads(out.read_text())["figures"]
    key = "mlp_remove"
    return {"command": done.command, "wall_seconds": done.seconds, **figures}, (
        f"{done.seconds:.1f} s; lockstep {figures[f'{key}_lockstep_seconds']:.2f} s, target after "
        f"target {figures[f'{key}_target_after_target_seconds']:.2f} s; the search adds "
        f"{figures[f'{key}_per_model_added_per_model']:+.4f} s a model")


def magic_resnet9(ctx: Context) -> tuple[dict, str]:
    over = [f"dataset.root={ctx.need_cifar()}"] + ([*TINY_SETS, *TINY_PAPER] if ctx.smoke else [])
    figures = _run(ctx, "magic_resnet9", merged(MAGIC_RESNET9, over))
    cost = figures.get("score_cost") or {}
    per_target = (cost.get("seconds") or 0) / max(1, int(figures.get("n_targets") or 1))
    figures["magic_seconds_per_target"] = per_target
    peak = (cost.get("peak_bytes") or 0) / 2**30
    return figures, (f"scorer=magic on FFCV's ResNet-9 (BatchNorm), fp32: "
                     f"{per_target:.1f} s a target, peak {peak:.2f} GiB")
