"""A value equal to its default leaves cache keys and run identities (brittle/runtime/defaults.py):
conf/ writes every setting out, and a config that writes a default out is the same run, under the
same cache keys, as one that leaves it out; any other value is another run and other keys. The
defaults a key may leave out are pinned to the cache schema: changing one changes what every
key without it means."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from brittle import CACHE_SCHEMA
from brittle.runtime.defaults import (
    RECORDS,
    SETTING_DEFAULTS,
    record_defaults,
    signature_defaults,
    without_defaults,
)
from brittle.runtime.errors import BrittleError
from brittle.runtime.execution import run_identity
from brittle.runtime.files import canonical, check_run_dir
from brittle.runtime.names import PREFIX, REGISTERED
from brittle.stages import bank, data, embed, pretrain, reference
from brittle.stages.keys import key_of, select
from tests.helpers import make_cfg

# The settings conf/ left out before it wrote every setting, with their defaults as stated here
# (independently of the code): a config with them deleted is what conf/ composed then.
_RECIPE = {"nesterov": False, "precision": "auto", "translate_fill": None, "cutout_inside": False,
           "resolution": None, "schedule": "actual"}
LEFT_OUT = {
    "backbone.compile": False, "backbone.features": "backbone", "backbone.net.width": 1.0,
    "trainer.concurrent": 8, "trainer.max_stack": 256,
    "trainer.epochs": None, "trainer.batch_size": None, "scorer.magnitude": "inverse_clipped",
    "dataset.loader.center_crop": None, "eval.order": "independent",
    "arch.model.whiten_kernel": 2, "arch.model.bn_momentum": 0.4, "arch.model.scale": 1 / 9,
    **{f"{node}.recipe.{k}": v for node in ("arch", "trainer") for k, v in _RECIPE.items()},
}
# (overrides, settings left out of those options besides; trainer=paper writes `together: loop`,
# not RecipeTrainer's default, auto)
CASES = [([], {}), (["trainer=fast", "arch=airnet"], {"trainer.together": "loop"}),
         (["trainer=paper", "arch=resnet9_ffcv", "scorer=l2", "eval=lds"], {}),
         (["dataset=imagefolder", "backbone=moco_r18", "trainer=cpu"], {})]
# the stages whose keys a setting may enter (the embed stage reads backbone.features: below)
KEYS = {
    "data": lambda c: key_of(select(c, data.DEPENDS_ON)),
    "pretrain": lambda c: pretrain.key(select(c, pretrain.DEPENDS_ON, pretrain.EXCLUDES)),
    "reference": lambda c: key_of(select(c, reference.DEPENDS_ON)),
    "bank": lambda c: bank.key(select(c, bank.DEPENDS_ON), 10, 0.5, "lds"),
}


def _left_out(cfg, extra: dict):
    """cfg less every LEFT_OUT (and `extra`) setting it holds at the default stated above; and
    their paths."""
    out, deleted = copy.deepcopy(cfg), []
    for path, default in {**LEFT_OUT, **extra}.items():
        parent, _, key = path.rpartition(".")
        node = OmegaConf.select(out, parent)
        if node is not None and key in node and node[key] == default:
            with open_dict(node):
                del node[key]
            deleted.append(path)
    return out, deleted


def _keys(cfg) -> dict:
    return {stage: canonical(fn(cfg)) for stage, fn in KEYS.items()}


@pytest.mark.parametrize("overrides,extra", CASES, ids=[" ".join(c) or "default" for c, _ in CASES])
def test_a_default_written_out_is_the_same_run_and_keys(overrides, extra, tmp_path):
    written = make_cfg(overrides)
    left_out, deleted = _left_out(written, extra)
    assert len(deleted) >= 8, deleted
    assert _keys(left_out) == _keys(written)
    check_run_dir(tmp_path, run_identity(left_out))   # a run recorded without them ...
    check_run_dir(tmp_path, run_identity(written))    # ... resumes with them written out
    assert "features" not in embed.key(select(written, embed.DEPENDS_ON))


OTHER = [  # (overrides, the stage whose key the value enters; None: the run's identity alone)
    (["backbone.compile=true"], "pretrain"),
    (["backbone=moco_r18", "backbone.net.width=0.5"], "pretrain"),
    (["trainer.concurrent=4"], "reference"),
    (["trainer=fast", "trainer.together=vmap"], "bank"),
    (["arch.recipe.schedule=reference"], "reference"),
    (["arch.recipe.precision=fp32"], "bank"),
    (["arch=airnet", "arch.model.scale=0.2"], "reference"),
    (["dataset=imagefolder", "dataset.loader.center_crop=0.875"], "data"),
    (["scorer.magnitude=rank"], None),
    (["eval=lds", "eval.order=same_order"], None),
]


@pytest.mark.parametrize("overrides,stage", OTHER, ids=[" ".join(o) for o, _ in OTHER])
def test_another_value_is_another_run_and_key(overrides, stage, tmp_path):
    base = make_cfg([o for o in overrides if "." not in o.partition("=")[0]])
    other = make_cfg(overrides)
    if stage is not None:
        assert canonical(KEYS[stage](other)) != canonical(KEYS[stage](base))
    check_run_dir(tmp_path, run_identity(base))
    with pytest.raises(BrittleError, match="holds results of a different config"):
        check_run_dir(tmp_path, run_identity(other))


def test_projection_features_enter_the_embed_key():
    other = embed.key(select(make_cfg(["backbone.features=projection"]), embed.DEPENDS_ON))
    assert other["features"] == "projection"


def test_a_default_is_never_confused_with_an_equal_number():
    """True == 1 in Python: a bool setting whose default is a number (or the reverse) stays."""
    node = {"_target_": "brittle.counterfactual.searches.Bisection", "budget": 7, "lockstep": 0}
    assert without_defaults(node) == {"_target_": "brittle.counterfactual.searches.Bisection",
                                      "lockstep": 0}
    assert without_defaults({**node, "lockstep": False}) == {"_target_": node["_target_"]}


PINNED = Path(__file__).with_name("brittle_defaults.json")


def current_defaults() -> dict:
    """Every default a key may leave out: brittle's targets' (by stable name), their records',
    RECORDS' and SETTING_DEFAULTS, as JSON holds them."""
    out: dict = {}
    for name in sorted(REGISTERED):
        params, records = signature_defaults(PREFIX + name)
        out[PREFIX + name] = params
        for record in records.values():
            out[f"{record.__module__}.{record.__qualname__}"] = record_defaults(record)
    for record in RECORDS.values():
        out[record] = record_defaults(record)
    out["settings"] = dict(SETTING_DEFAULTS)
    return json.loads(json.dumps(out, default=repr))


def test_no_default_changed_under_this_cache_schema():
    """A key made when a default was d leaves the value d out; were the default changed to e, a
    config with e would find that entry. A changed default therefore bumps CACHE_SCHEMA
    (brittle/__init__.py), then `python -m tests.runtime.test_defaults` pins the new ones. A new
    setting is free to add (its default must compute what the code did without it)."""
    pinned = json.loads(PINNED.read_text())
    if pinned["schema"] != CACHE_SCHEMA:
        pytest.fail(f"{PINNED.name} pins schema {pinned['schema']}, this is {CACHE_SCHEMA}: "
                    f"run python -m tests.runtime.test_defaults")
    now = current_defaults()
    changed = [f"{target}.{k}: {v!r} -> {now.get(target, {}).get(k, 'removed')!r}"
               for target, params in pinned["defaults"].items() for k, v in params.items()
               if now.get(target, {}).get(k, "removed") != v]
    assert not changed, ("defaults changed under the same cache schema (bump CACHE_SCHEMA, then "
                         f"python -m tests.runtime.test_defaults): {changed}")


if __name__ == "__main__":   # one line a target
    lines = [f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}"
             for k, v in sorted(current_defaults().items())]
    PINNED.write_text(f'{{"schema": {CACHE_SCHEMA}, "defaults": {{\n' + ",\n".join(lines)
                      + "\n}}\n")
    print(f"wrote {PINNED}")
