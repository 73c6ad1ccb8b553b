"""Stable names: cache keys and run identities name brittle's code by what it computes, so that
moving a class keeps every cached artifact; import paths of earlier releases are refused."""
from __future__ import annotations

import pytest
from hydra.utils import get_object
from omegaconf import OmegaConf

from brittle.runtime.execution import run_identity
from brittle.runtime.names import MOVED, REGISTERED, stable_name, with_stable_names
from brittle.stages import embed, pretrain, reference
from brittle.stages.subset import key_of, select
from tests.helpers import CONF, make_cfg, run_brittle


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


def test_only_display_labels_are_dropped_from_keys():
    """`arch.label` is a display name; a setting called `label` elsewhere is part of the key."""
    cfg = make_cfg([])
    relabelled = make_cfg(["arch.label=other"])
    assert (key_of(select(cfg, reference.DEPENDS_ON))
            == key_of(select(relabelled, reference.DEPENDS_ON)))
    spec = with_stable_names({"arch": {"model": {"_target_": "x.Y", "label": 3}}})
    assert spec["arch"]["model"]["label"] == 3
    extra = make_cfg(["+arch.model.label=3"])
    assert key_of(select(extra, reference.DEPENDS_ON)) != key_of(select(cfg, reference.DEPENDS_ON))


@pytest.mark.parametrize("old", ["brittle.search.Bisection", "brittle.retrain.perturb.Mislabel"])
def test_an_old_import_path_is_refused_with_the_new_one(old):
    group = "search" if "search" in old else "task"
    p = run_brittle([f"{group}._target_={old}"])
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert p.returncode == 2 and len(errors) == 1, p.stderr[-800:]
    assert f"{group}._target_={old} has moved; use {group}._target_={MOVED[old]}" in errors[0]
    assert "Traceback" not in p.stderr


def test_a_run_directory_of_the_release_before_the_renames_resumes(tmp_path):
    """tests/fixtures holds the run_spec.json that f273656 wrote for `scorer=trak` (with `protocol:`
    and the trainer label `arch`): today's config of the same command binds to that directory."""
    import shutil

    from brittle.runtime.files import check_run_dir
    shutil.copy(CONF.parent / "tests" / "fixtures" / "run_spec_f273656_scorer=trak.json",
                tmp_path / "run_spec.json")
    check_run_dir(tmp_path, run_identity(make_cfg(["scorer=trak"])))   # no error: the same run
    with pytest.raises(Exception, match="holds results of a different config"):
        check_run_dir(tmp_path, run_identity(make_cfg(["scorer=trak", "trak_sizes.n_models=6"])))
    # a view setting that differs from lightly's default is another run, written out or not
    with pytest.raises(Exception, match="holds results of a different config"):
        check_run_dir(tmp_path, run_identity(make_cfg(["scorer=trak",
                                                       "dataset.ssl_transform.cj_hue=0.2"])))


def test_a_library_default_written_out_is_the_same_run():
    """conf/dataset/digits.yaml writes lightly's view defaults out; a recorded identity that left
    them to lightly is the same run, one with another value is not."""
    from brittle.runtime.names import without_library_defaults

    spec = run_identity(make_cfg([]))
    views = spec["dataset"]["ssl_transform"]
    assert views["sigmas"] == [0.1, 2.0] and views["rr_prob"] == 0.0   # written out in the config
    left_out = {**spec, "dataset": {**spec["dataset"], "ssl_transform": {
        k: v for k, v in views.items() if k not in ("sigmas", "rr_prob", "cj_hue")}}}
    assert without_library_defaults(left_out) == without_library_defaults(spec)
    changed = {**spec, "dataset": {**spec["dataset"], "ssl_transform": {**views, "rr_prob": 0.5}}}
    assert without_library_defaults(changed) != without_library_defaults(spec)


@pytest.mark.parametrize("old,new", [("trainer=arch", "trainer=arch_recipe"),
                                     ("scorer=esvm_others0", "scorer=esvm_other_classes_zero")])
def test_a_renamed_option_names_its_new_name(old, new):
    from brittle.cli.validate import check_command_line
    problem = check_command_line([old])
    assert problem is not None and problem.startswith(f"{old} was renamed {new}; valid: "), problem
