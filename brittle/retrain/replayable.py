"""What a weighted training run (brittle/retrain/weighted.py) can replay exactly, checked before any
training: by `scorer=magic` (its metagradients differentiate through that run) and by the
same-order LDS bank (`eval=lds_same_order`, whose models are that run with weights 0).

Supported: the recipe trainer (trainer=arch_recipe, paper or cpu) with the sgd optimizer in fp32
(momentum, Nesterov and weight decay as torch.optim.SGD computes them), any augmentation of
brittle/retrain/augment.py, and an arch without dropout. BatchNorm is followed: its running
statistics are part of the replayed state (brittle/retrain/batchstats.py); a weight scales an
image's loss, so an image of weight 0 still enters its batches' statistics (MAGIC's data
weights: weight 0 removes the image from the loss, not from the normalisation). Refused:

- dropout: its masks are draws of the global generator that the replay would have to repeat;
- BatchNorm without running statistics or with a cumulative average (momentum None), and
  InstanceNorm with running statistics;
- fp16/bf16 (autocast and the fp16 loss scaler are not part of the replay), adamw, progressive
  resizing (`trainer.recipe.resolution`) and trainer=fast (its own optimiser, schedule and
  whitening).

`config_problem` reads only the configuration (no torch: the command line's check calls it);
`arch_problem` and `precision_problem` need the built model or the device.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RECIPE_TRAINERS = ("brittle.retrain.recipe_trainer.RecipeTrainer", "brittle:trainer/recipe")


def recipe_problem(recipe: Mapping[str, Any], who: str) -> str | None:
    """The first recipe setting the replay cannot follow, as one line naming the fix, or None."""
    optimizer = recipe.get("optimizer", "sgd")
    if optimizer != "sgd":
        return (f"{who} supports the sgd optimizer in fp32; trainer.recipe.optimizer={optimizer}: "
                "use sgd")
    precision = recipe.get("precision", "auto")
    if precision not in ("auto", "fp32"):
        return (f"{who} supports the sgd optimizer in fp32; trainer.recipe.precision={precision}: "
                "use fp32")
    if recipe.get("resolution") is not None:
        return (f"{who} replays no progressive resizing; trainer.recipe.resolution="
                f"{_listed(recipe['resolution'])}: use null")
    return None


def config_problem(cfg: Mapping[str, Any]) -> str | None:
    """The run's first setting that its weighted runs cannot replay (scorer=magic or
    eval=lds_same_order), from the composed configuration alone; None when it has no weighted
    run or all is well."""
    who = _who(cfg)
    if who is None:
        return None
    trainer = cfg.get("trainer") or {}
    if str(trainer.get("_target_")) not in RECIPE_TRAINERS:
        name = trainer.get("name", trainer.get("_target_"))
        return (f"{who} replays the recipe trainer (trainer=arch_recipe, paper or cpu); "
                f"trainer={name}: use trainer=arch_recipe")
    return recipe_problem(trainer.get("recipe") or {}, who)


def _who(cfg: Mapping[str, Any]) -> str | None:
    """'scorer=magic' or 'eval=lds_same_order' when the run has a weighted run, else None."""
    scorer = str((cfg.get("scorer") or {}).get("_target_", ""))
    if scorer in ("brittle.scorers.magic.Magic", "brittle:scorer/magic"):
        return "scorer=magic"
    if (cfg.get("eval") or {}).get("order") == "same_order":
        return "eval=lds_same_order"
    return None


def arch_problem(model: Any, who: str, arch: str | None = None) -> str | None:
    """One line naming the arch's first module that the replay cannot reproduce (dropout, batch
    statistics), or None."""
    from torch import nn

    from brittle.retrain.batchstats import statistics_problem

    name = f"arch={arch}" if arch else f"the arch ({type(model).__name__})"
    for module in model.modules():
        kind = type(module).__name__
        stats = (isinstance(module, nn.modules.instancenorm._InstanceNorm)
                 and module.track_running_stats)
        drops = "Drop" in kind and float(getattr(module, "p", getattr(module, "drop_prob", 0.0))
                                         or 0.0) > 0
        if stats or drops:
            return (f"{who} needs an arch without dropout or running instance statistics; {name} "
                    f"has {kind}: use arch=mlp or cnn")
    problem = statistics_problem(model)
    if problem:
        return f"{who} follows BatchNorm's running averages; {name} has {problem}: use arch=cnn"
    return None


def precision_problem(precision: str, device_type: str, who: str) -> str | None:
    """`auto` is bf16 on a GPU (brittle/retrain/precision.py): the replay runs fp32 only."""
    if precision == "auto" and device_type == "cuda":
        return (f"{who} supports the sgd optimizer in fp32; trainer.recipe.precision=auto (bf16 "
                "on a GPU): use fp32")
    return None


def engine_problem(engine: Any, who: str, arch: str | None = None) -> str | None:
    """The first thing about a retraining engine (brittle/retrain/engine.py: its trainer, recipe,
    device and arch) that a weighted run cannot replay, as one line; None when it can."""
    from brittle.retrain.recipe_trainer import RecipeTrainer

    trainer = engine.trainer
    if not isinstance(trainer, RecipeTrainer):
        name = getattr(trainer, "name", type(trainer).__name__)
        return (f"{who} replays the recipe trainer (trainer=arch_recipe, paper or cpu); "
                f"trainer={name}: use trainer=arch_recipe")
    recipe = trainer.recipe
    return (recipe_problem(vars(recipe), who)
            or precision_problem(recipe.precision, engine.train_x.device.type, who)
            or arch_problem(_built(engine), who, arch))


def _built(engine: Any) -> Any:
    """The engine's arch, built aside: the caller's random stream stays as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        return engine.build()


def check_engine(engine: Any, who: str, arch: str | None = None) -> Any:
    """The engine's Recipe, once `engine_problem` finds nothing; else BrittleError."""
    from brittle.runtime.errors import BrittleError

    problem = engine_problem(engine, who, arch)
    if problem:
        raise BrittleError(problem)
    return engine.trainer.recipe


def _listed(value: Any) -> Any:
    """A config list (a list, tuple or OmegaConf ListConfig) as the command line writes it."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        return value
    return [_listed(v) for v in value]
