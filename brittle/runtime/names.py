"""Stable names of brittle's config targets, so that a cache key names what is computed, not
where its code lives.

A `_target_` of brittle's own code enters cache keys and run identities as its registered name
(`brittle:search/bisection`), never as its import path: moving a class to another module
changes one line of `REGISTERED`, not every cached backbone. A re-export (an alias module) of a
registered class resolves to the same name. Targets outside brittle (a library's class, a user's
own scorer) keep their import path: that is their identity. `MOVED` lists the import paths of
earlier releases, which the command line refuses with the new path.
"""
from __future__ import annotations

from typing import Any

# stable name -> where the code lives now (one line per target; tests/test_names.py imports each)
REGISTERED: dict[str, str] = {
    "data/digits": "brittle.data.datasets.load_digits",
    "data/cifar10": "brittle.data.cifar10.load_cifar10",
    "data/imagefolder": "brittle.data.imagefolder.load_imagefolder",
    "net/small_cnn": "brittle.ssl.networks.small_cnn",
    "net/resnet18_cifar": "brittle.ssl.networks.resnet18_cifar",
    "net/pretrained": "brittle.ssl.networks.pretrained_net",
    "net/lightly_resnet": "brittle.ssl.networks.lightly_resnet",
    "ssl/moco": "brittle.ssl.methods.MoCo",
    "ssl/byol": "brittle.ssl.methods.BYOL",
    "ssl/simclr": "brittle.ssl.methods.SimCLR",
    "ssl/dino": "brittle.ssl.methods.DINO",
    "ssl/supervised": "brittle.ssl.methods.Supervised",
    "ssl/barlowtwins": "brittle.ssl.benchmark_methods.BarlowTwins",
    "ssl/simsiam": "brittle.ssl.benchmark_methods.SimSiam",
    "ssl/swav": "brittle.ssl.benchmark_methods.SwAV",
    "ssl/nnclr": "brittle.ssl.benchmark_methods.NNCLR",
    "ssl/dcl": "brittle.ssl.benchmark_methods.DCL",
    "ssl/smog": "brittle.ssl.benchmark_methods.SMoG",
    "arch/mlp": "brittle.retrain.arches.MLP",
    "arch/cnn": "brittle.retrain.arches.SmallCNN",
    "arch/resnet9": "brittle.retrain.arches.ResNet9",
    "arch/resnet9_ffcv": "brittle.retrain.arches.ResNet9FFCV",
    "arch/mobilenetv2": "brittle.retrain.arches.mobilenet_v2",
    "arch/resnet18": "brittle.retrain.arches.resnet18",
    "arch/vit": "brittle.retrain.arches.vit",
    "arch/swin_t": "brittle.retrain.arches.swin_t",
    "arch/mlpmixer": "brittle.retrain.arches.mlp_mixer",
    "arch/convmixer": "brittle.retrain.arches.conv_mixer",
    "arch/airnet": "brittle.retrain.airbench.AirNet",
    "trainer/recipe": "brittle.retrain.recipe_trainer.RecipeTrainer",
    "trainer/fast": "brittle.retrain.airbench.FastTrainer",
    "task/remove": "brittle.support.tasks.Remove",
    "task/mislabel": "brittle.support.tasks.Mislabel",
    "search/bisection": "brittle.support.searches.Bisection",
    "search/grid": "brittle.support.searches.Grid",
    "search/parallel": "brittle.support.searches.Parallel",
    "scorer/esvm": "brittle.scorers.esvm.scorer.ExemplarSVM",
    "scorer/distance": "brittle.scorers.distance.Distance",
    "scorer/random": "brittle.scorers.random.RandomOrder",
    "scorer/gradcos": "brittle.scorers.gradcos.GradCos",
    "scorer/trak": "brittle.scorers.trak.Trak",
    "scorer/datamodels": "brittle.scorers.datamodels.Datamodels",
    "scorer/precomputed": "brittle.scorers.precomputed.Precomputed",
    "scorer/dattri": "brittle.scorers.attributors.Dattri",
    "eval/lds": "brittle.eval.lds.LinearDatamodelingScore",
    "eval/none": "brittle.eval.lds.NoEvaluation",
}
PREFIX = "brittle:"
_BY_PATH = {path: PREFIX + name for name, path in REGISTERED.items()}

# import paths of brittle 0.1 (a flat package) -> today's
MOVED: dict[str, str] = {
    "brittle.data.load_digits": "brittle.data.datasets.load_digits",
    "brittle.data.load_cifar10": "brittle.data.cifar10.load_cifar10",
    "brittle.imagefolder.load_imagefolder": "brittle.data.imagefolder.load_imagefolder",
    **{f"brittle.backbones.{n}": f"brittle.ssl.networks.{n}"
       for n in ("small_cnn", "resnet18_cifar", "pretrained_net")},
    **{f"brittle.methods.{n}": f"brittle.ssl.methods.{n}" for n in ("MoCo", "BYOL", "SimCLR", "DINO", "Supervised")},
    "brittle.retrain.trainers.RecipeTrainer": "brittle.retrain.recipe_trainer.RecipeTrainer",
    "brittle.retrain.perturb.Remove": "brittle.support.tasks.Remove",
    "brittle.retrain.perturb.Mislabel": "brittle.support.tasks.Mislabel",
    **{f"brittle.search.{n}": f"brittle.support.searches.{n}" for n in ("Bisection", "Grid", "Parallel")},
    "brittle.stages.lds.LinearDatamodelingScore": "brittle.eval.lds.LinearDatamodelingScore",
    "brittle.stages.lds.NoEvaluation": "brittle.eval.lds.NoEvaluation",
}


def stable_name(target: str) -> str:
    """The registered name of a `_target_` of brittle's (also through a re-export), else the
    target itself. A brittle path that is not registered is imported to find what it re-exports;
    other packages' targets are never imported here."""
    if target in _BY_PATH:
        return _BY_PATH[target]
    if not target.startswith("brittle.") or target in MOVED:
        return target
    try:
        from hydra.utils import get_object
        obj = get_object(target)
    except Exception:  # not importable: the command-line check reports it
        return target
    return _BY_PATH.get(f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}", target)


def moved(target: str) -> str | None:
    """Today's import path of a target that an earlier release spelt otherwise, else None."""
    return MOVED.get(target)


def with_stable_names(node: Any) -> Any:
    """A config container with every `_target_` value replaced by its stable name."""
    if isinstance(node, dict):
        return {k: (stable_name(v) if k == "_target_" and isinstance(v, str) else with_stable_names(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [with_stable_names(v) for v in node]
    return node

