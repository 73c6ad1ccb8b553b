"""Stable names of brittle's config targets, so that a cache key names what is computed, not
where its code lives.

A `_target_` of brittle's own code enters cache keys and run identities as its registered name
(`brittle:search/bisection`), never as its import path: moving a class to another module
changes one line of `REGISTERED`, not every cached backbone. A re-export (an alias module) of a
registered class resolves to the same name. Targets outside brittle (a library's class, a user's
own scorer) keep their import path: that is their identity.

Why stable names and not import paths in keys: a cached pretraining is GPU hours; with import
paths, moving a class between modules would orphan every cache entry that names it, and a key
would carry the package's layout. One table line a target is the whole cost.
"""
from __future__ import annotations

from typing import Any

# stable name -> where the code lives now (one line per target;
# tests/runtime/test_names.py imports each)
REGISTERED: dict[str, str] = {
    "data/digits": "brittle.data.datasets.load_digits",
    "data/cifar10": "brittle.data.cifar10.load_cifar10",
    "data/imagefolder": "brittle.data.imagefolder.load_imagefolder",
    "data/huggingface": "brittle.data.huggingface.load_huggingface",
    "net/small_cnn": "brittle.ssl.networks.small_cnn",
    "net/resnet18_cifar": "brittle.ssl.networks.resnet18_cifar",
    "net/pretrained": "brittle.ssl.networks.pretrained_net",
    "net/lightly_resnet": "brittle.ssl.networks.lightly_resnet",
    "ssl/moco": "brittle.ssl.methods.MoCo",
    "ssl/byol": "brittle.ssl.methods.BYOL",
    "ssl/simclr": "brittle.ssl.methods.SimCLR",
    "ssl/dino": "brittle.ssl.methods.DINO",
    "ssl/supervised": "brittle.ssl.methods.Supervised",
    "ssl/barlowtwins": "brittle.ssl.extra_methods.BarlowTwins",
    "ssl/simsiam": "brittle.ssl.extra_methods.SimSiam",
    "ssl/swav": "brittle.ssl.extra_methods.SwAV",
    "ssl/nnclr": "brittle.ssl.extra_methods.NNCLR",
    "ssl/dcl": "brittle.ssl.extra_methods.DCL",
    "ssl/smog": "brittle.ssl.extra_methods.SMoG",
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
    "arch/mobilenetv2_cifar": "brittle.retrain.reference_arches.MobileNetV2CIFAR",
    "arch/swin_t_cifar": "brittle.retrain.reference_arches.SwinCIFAR",
    "arch/airnet": "brittle.retrain.airnet.AirNet",
    "trainer/recipe": "brittle.retrain.recipe_trainer.RecipeTrainer",
    "trainer/fast": "brittle.retrain.fast_trainer.FastTrainer",
    "trainer/custom": "brittle.retrain.custom.CustomTrainer",
    "task/remove": "brittle.counterfactual.tasks.Remove",
    "task/mislabel": "brittle.counterfactual.tasks.Mislabel",
    "search/bisection": "brittle.counterfactual.searches.Bisection",
    "search/grid": "brittle.counterfactual.searches.Grid",
    "search/parallel": "brittle.counterfactual.searches.Parallel",
    "scorer/esvm": "brittle.scorers.esvm.scorer.ExemplarSVM",
    "scorer/distance": "brittle.scorers.distance.Distance",
    "scorer/random": "brittle.scorers.random.RandomOrder",
    "scorer/gradcos": "brittle.scorers.gradcos.GradCos",
    "scorer/trak": "brittle.scorers.trak.Trak",
    "scorer/datamodels": "brittle.scorers.datamodels.Datamodels",
    "scorer/precomputed": "brittle.scorers.precomputed.Precomputed",
    "scorer/dattri": "brittle.scorers.attributors.Dattri",
    "scorer/magic": "brittle.scorers.magic.Magic",
    "eval/lds": "brittle.eval.lds.LinearDatamodelingScore",
    "eval/none": "brittle.eval.lds.NoEvaluation",
}
PREFIX = "brittle:"
_BY_PATH = {path: PREFIX + name for name, path in REGISTERED.items()}


def stable_name(target: str) -> str:
    """The registered name of a `_target_` of brittle's (also through a re-export), else the
    target itself. A brittle path that is not registered is imported to find what it re-exports;
    other packages' targets are never imported here."""
    if target in _BY_PATH:
        return _BY_PATH[target]
    if not target.startswith("brittle."):
        return target
    try:
        from hydra.utils import get_object
        obj = get_object(target)
    except Exception:  # not importable: the command-line check reports it
        return target
    return _BY_PATH.get(f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}",
                        target)


def with_stable_names(node: Any) -> Any:
    """A config container with every `_target_` value replaced by its stable name."""
    if isinstance(node, dict):
        return {k: (stable_name(v) if k == "_target_" and isinstance(v, str)
                    else with_stable_names(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [with_stable_names(v) for v in node]
    return node

