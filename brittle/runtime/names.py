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
    "eval/lds": "brittle.eval.lds.LinearDatamodelingScore",
    "eval/none": "brittle.eval.lds.NoEvaluation",
}
PREFIX = "brittle:"
_BY_PATH = {path: PREFIX + name for name, path in REGISTERED.items()}

# import paths of earlier releases (0.1: a flat package; then brittle.support and
# airbench.py) -> today's
MOVED: dict[str, str] = {
    "brittle.data.load_digits": "brittle.data.datasets.load_digits",
    "brittle.data.load_cifar10": "brittle.data.cifar10.load_cifar10",
    "brittle.imagefolder.load_imagefolder": "brittle.data.imagefolder.load_imagefolder",
    **{f"brittle.backbones.{n}": f"brittle.ssl.networks.{n}"
       for n in ("small_cnn", "resnet18_cifar", "pretrained_net")},
    **{f"brittle.methods.{n}": f"brittle.ssl.methods.{n}"
       for n in ("MoCo", "BYOL", "SimCLR", "DINO", "Supervised")},
    "brittle.retrain.trainers.RecipeTrainer": "brittle.retrain.recipe_trainer.RecipeTrainer",
    "brittle.retrain.perturb.Remove": "brittle.counterfactual.tasks.Remove",
    "brittle.retrain.perturb.Mislabel": "brittle.counterfactual.tasks.Mislabel",
    **{f"brittle.search.{n}": f"brittle.counterfactual.searches.{n}"
       for n in ("Bisection", "Grid", "Parallel")},
    "brittle.stages.lds.LinearDatamodelingScore": "brittle.eval.lds.LinearDatamodelingScore",
    "brittle.stages.lds.NoEvaluation": "brittle.eval.lds.NoEvaluation",
    **{f"brittle.support.tasks.{n}": f"brittle.counterfactual.tasks.{n}"
       for n in ("Remove", "Mislabel")},
    **{f"brittle.support.searches.{n}": f"brittle.counterfactual.searches.{n}"
       for n in ("Bisection", "Grid", "Parallel")},
    "brittle.retrain.airbench.AirNet": "brittle.retrain.airnet.AirNet",
    "brittle.retrain.airbench.FastTrainer": "brittle.retrain.fast_trainer.FastTrainer",
    **{f"brittle.ssl.benchmark_methods.{n}": f"brittle.ssl.extra_methods.{n}"
       for n in ("BarlowTwins", "SimSiam", "SwAV", "NNCLR", "DCL", "SMoG")},
}

# group options and settings of earlier releases -> today's. The command line names the new option;
# a run directory recorded under the old names resumes (its run_spec.json is read through these).
RENAMED_OPTIONS: dict[str, str] = {
    "trainer=arch": "trainer=arch_recipe",
    "scorer=esvm_others0": "scorer=esvm_other_classes_zero",
}
RENAMED_SETTINGS: dict[str, str] = {
    "protocol.trak_models": "trak_sizes.n_models",
    "protocol.trak_proj_dim": "trak_sizes.proj_dim",
}
# (setting, old value) -> new value: display labels that followed an option's name
RENAMED_VALUES: dict[tuple[str, str], str] = {("trainer.label", "arch"): "arch_recipe"}


def upgraded_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """A run identity recorded by an earlier release, in today's names (a copy)."""
    import copy

    out = copy.deepcopy(identity)
    for old, new in RENAMED_SETTINGS.items():
        head, _, leaf = old.rpartition(".")
        node = out.get(head) if isinstance(out.get(head), dict) else None
        if node is not None and leaf in node:
            value = node.pop(leaf)
            new_head, _, new_leaf = new.rpartition(".")
            out.setdefault(new_head, {})[new_leaf] = value
            if not node:
                out.pop(head)
    for (path, old_value), new_value in RENAMED_VALUES.items():
        head, _, leaf = path.rpartition(".")
        node = out.get(head)
        if isinstance(node, dict) and node.get(leaf) == old_value:
            node[leaf] = new_value
    return out


def without_library_defaults(identity: Any) -> Any:
    """A run identity (a copy) without the arguments of another package's `_target_` that equal
    that target's own defaults in the installed version: a config that writes a library's
    default out (conf/dataset/*.yaml's view transforms) and one that left it to the library build
    the same object, so a run directory recorded either way resumes under the other."""
    if isinstance(identity, list):
        return [without_library_defaults(v) for v in identity]
    if not isinstance(identity, dict):
        return identity
    out = {k: without_library_defaults(v) for k, v in identity.items()}
    target = out.get("_target_")
    if isinstance(target, str) and not target.startswith(("brittle.", "brittle:")):
        defaults = _defaults_of(target)
        out = {k: v for k, v in out.items() if k not in defaults or _plain(v) != defaults[k]}
    return out


def _defaults_of(target: str) -> dict[str, Any]:
    import inspect

    try:
        from hydra.utils import get_object
        params = inspect.signature(get_object(target)).parameters.values()
    except Exception:  # not importable or no signature: every argument counts
        return {}
    return {p.name: _plain(p.default) for p in params if p.default is not inspect.Parameter.empty}


def _plain(value: Any) -> Any:
    """A value as JSON holds it (tuples as lists), so defaults compare with recorded values."""
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


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
    return _BY_PATH.get(f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}",
                        target)


def moved(target: str) -> str | None:
    """Today's import path of a target that an earlier release spelt otherwise, else None."""
    return MOVED.get(target)


def with_stable_names(node: Any) -> Any:
    """A config container with every `_target_` value replaced by its stable name."""
    if isinstance(node, dict):
        return {k: (stable_name(v) if k == "_target_" and isinstance(v, str)
                    else with_stable_names(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [with_stable_names(v) for v in node]
    return node

