"""Stable names: cache keys and run identities name brittle's code by what it computes, so that
moving a class keeps every cached artifact; caches and run directories of an earlier schema are
named in one line."""
from __future__ import annotations

import pytest
from hydra.utils import get_object
from omegaconf import OmegaConf

from brittle.runtime.execution import run_identity
from brittle.runtime.names import REGISTERED, stable_name, with_stable_names
from brittle.stages import embed, pretrain, reference
from brittle.stages.keys import key_of, select
from tests.helpers import CONF, make_cfg


def _targets_in_conf() -> set[str]:
    found = set()
    for path in CONF.rglob("*.yaml"):
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("_target_:"):
                found.add(line.split(":", 1)[1].strip())
    return found


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_every_registered_name_points_at_real_code(name):
    obj = get_object(REGISTERED[name])
    assert f"{obj.__module__}.{obj.__qualname__}" == REGISTERED[name]


def test_every_brittle_target_of_conf_is_registered():
    ours = {t for t in _targets_in_conf() if t.startswith("brittle.")}
    assert ours and ours <= set(REGISTERED.values()), ours - set(REGISTERED.values())
    assert all(stable_name(t).startswith("brittle:") for t in ours)


def test_a_reexport_has_the_key_of_the_class_it_reexports():
    """An alias module (the package `brittle.scorers.esvm` re-exports ExemplarSVM) is the same
    code."""
    assert (stable_name("brittle.scorers.esvm.ExemplarSVM")
            == stable_name("brittle.scorers.esvm.scorer.ExemplarSVM"))
    assert stable_name("brittle.scorers.esvm.ExemplarSVM") == "brittle:scorer/esvm"
    # other packages' targets are their import path, never imported to compute a key
    assert stable_name("lightly.transforms.MoCoV2Transform") == "lightly.transforms.MoCoV2Transform"
    assert stable_name("brittle.no_such_module.Thing") == "brittle.no_such_module.Thing"


def test_moving_a_class_keeps_every_cache_key(tmp_path, monkeypatch):
    """A class moved to another module (here: an alias module that re-exports it, and the table
    pointing there) gives the same pretrain, embed and reference keys and the same run identity."""
    cfg = make_cfg([])
    before = {"pretrain": pretrain.key(select(cfg, pretrain.DEPENDS_ON, pretrain.EXCLUDES)),
              "embed": embed.key(select(cfg, embed.DEPENDS_ON)),
              "reference": key_of(select(cfg, reference.DEPENDS_ON)), "run": run_identity(cfg)}
    (tmp_path / "relocated.py").write_text("from brittle.ssl.methods import MoCo\n"
                                           "from brittle.retrain.arches import MLP\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    moved_cfg = make_cfg(["backbone.method._target_=relocated.MoCo",
                          "arch.model._target_=relocated.MLP"])
    import brittle.runtime.names as names
    monkeypatch.setitem(names._BY_PATH, "relocated.MoCo", "brittle:ssl/moco")
    monkeypatch.setitem(names._BY_PATH, "relocated.MLP", "brittle:arch/mlp")
    after = {"pretrain": pretrain.key(select(moved_cfg, pretrain.DEPENDS_ON, pretrain.EXCLUDES)),
             "embed": embed.key(select(moved_cfg, embed.DEPENDS_ON)),
             "reference": key_of(select(moved_cfg, reference.DEPENDS_ON)),
             "run": run_identity(moved_cfg)}
    assert after == before
    # and the stage is still handed the real import path, which it instantiates
    assert select(moved_cfg, reference.DEPENDS_ON).arch.model._target_ == "relocated.MLP"


def test_keys_carry_no_import_path_of_brittle():
    cfg = make_cfg(["scorer=trak", "eval=lds"])
    text = OmegaConf.to_yaml(OmegaConf.create(run_identity(cfg)))
    assert "brittle." not in text.replace("brittle:", "")
    assert "brittle." not in str(key_of(select(cfg, reference.DEPENDS_ON))).replace("brittle:", "")


def test_only_display_names_are_dropped_from_keys():
    """`arch.name` is a display name; a setting called `name` elsewhere is part of the key."""
    cfg = make_cfg([])
    relabelled = make_cfg(["arch.name=other"])
    assert (key_of(select(cfg, reference.DEPENDS_ON))
            == key_of(select(relabelled, reference.DEPENDS_ON)))
    spec = with_stable_names({"arch": {"model": {"_target_": "x.Y", "name": 3}}})
    assert spec["arch"]["model"]["name"] == 3
    extra = make_cfg(["+arch.model.name=3"])
    assert key_of(select(extra, reference.DEPENDS_ON)) != key_of(select(cfg, reference.DEPENDS_ON))


def test_a_run_directory_of_an_earlier_schema_says_so_in_one_line(tmp_path):
    """A run directory whose run_spec.json predates the cache schema (no record of it, or an
    older one) is refused with one line; one of this schema resumes, another config is refused."""
    import json

    from brittle import CACHE_SCHEMA
    from brittle.runtime.errors import BrittleError
    from brittle.runtime.files import SCHEMA_FIELD, check_run_dir
    spec = run_identity(make_cfg(["scorer=trak"]))
    for old in ({}, {SCHEMA_FIELD: CACHE_SCHEMA - 1}):
        (tmp_path / "run_spec.json").write_text(json.dumps({**spec, **old}))
        with pytest.raises(BrittleError, match=f"predates brittle's schema {CACHE_SCHEMA}"):
            check_run_dir(tmp_path, spec)
    (tmp_path / "run_spec.json").unlink()
    check_run_dir(tmp_path, spec)             # written now, under this schema
    check_run_dir(tmp_path, spec)             # the same run resumes
    with pytest.raises(BrittleError, match="holds results of a different config"):
        check_run_dir(tmp_path, run_identity(make_cfg(["scorer=trak", "trak_sizes.n_models=6"])))
    # a view setting that differs from lightly's default is another run, written out or not
    with pytest.raises(BrittleError, match="holds results of a different config"):
        check_run_dir(tmp_path, run_identity(make_cfg(["scorer=trak",
                                                       "dataset.ssl_transform.cj_hue=0.2"])))


def test_a_cache_of_an_earlier_schema_is_named_in_one_warning(tmp_path, caplog):
    import json
    import logging

    from brittle.runtime.cache import StageCache
    cache = StageCache(tmp_path)
    cache.get_or_compute("reference", {"a": 1}, lambda tmp: None)
    cache.warn_earlier_schema()
    assert not caplog.records
    old = tmp_path / "pretrain" / "0123456789abcdef"
    old.mkdir(parents=True)
    (old / "meta.json").write_text(json.dumps({"stage": "pretrain", "spec": {}}))  # no schema
    with caplog.at_level(logging.WARNING):
        cache.warn_earlier_schema()
    assert len(caplog.records) == 1 and "1 entries of an earlier cache schema" in caplog.text


def test_a_library_default_written_out_is_the_same_run():
    """conf/dataset/digits.yaml writes lightly's view defaults out; a recorded identity that left
    them to lightly is the same run, one with another value is not."""
    from brittle.runtime.defaults import without_defaults

    spec = run_identity(make_cfg([]))
    views = spec["dataset"]["ssl_transform"]
    assert views["sigmas"] == [0.1, 2.0] and views["rr_prob"] == 0.0   # written out in the config
    left_out = {**spec, "dataset": {**spec["dataset"], "ssl_transform": {
        k: v for k, v in views.items() if k not in ("sigmas", "rr_prob", "cj_hue")}}}
    assert without_defaults(left_out) == without_defaults(spec)
    changed = {**spec, "dataset": {**spec["dataset"], "ssl_transform": {**views, "rr_prob": 0.5}}}
    assert without_defaults(changed) != without_defaults(spec)
