"""Hydra's whole sweep grammar, expanded by Hydra itself: every form the basic sweeper accepts
runs through the real command line to the right jobs, and a user's own config directory adds
options."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from brittle.cli.commandline import parse_command_line, sweep_jobs
from tests.helpers import ROOT, run_brittle

FAST = ["backbone.epochs=1", "targets.n=1", "search.budget=0", "search.n_test=1",
        "search.max_support=8", "reference.n_models=1", "arch.recipe.epochs=1", "progress=false"]


def _jobs(*args: str) -> list[list[str]]:
    return sweep_jobs(parse_command_line(list(args)))


def test_every_form_expands_as_hydra_expands_it():
    assert [j[0] for j in _jobs("-m", "scorer=choice(esvm,l2)")] == ["scorer=esvm", "scorer=l2"]
    assert [j[0] for j in _jobs("-m", "scorer=glob(l*)")] == ["scorer=l2"]
    assert [j[0] for j in _jobs("-m", "scorer=glob(*,exclude=[esvm,l2])")] == [
        "scorer=cosine", "scorer=datamodels", "scorer=dattri", "scorer=esvm_other_classes_zero",
        "scorer=gradcos", "scorer=influence", "scorer=magic", "scorer=precomputed",
        "scorer=random", "scorer=tracin", "scorer=trak"]
    # every value
    assert [j[0] for j in _jobs("-m", "seed=range(3)")] == ["seed=0", "seed=1", "seed=2"]
    assert len(_jobs("-m", "scorer=esvm,l2", "task=remove,mislabel")) == 4
    quoted = _jobs("-m", "dataset.root='/data/a,b'", "targets.indices=[1,2]", "scorer=esvm,l2")
    assert quoted == [["dataset.root='/data/a,b'", "targets.indices=[1,2]", f"scorer={s}"]
                      for s in ("esvm", "l2")]
    assert _jobs("-m", "+x=1", "~debug") == [["+x=1", "~debug=null"]]  # appended and deleted keys
    # an experiment's own sweep (hydra.sweeper.params) is part of the jobs, as the sweeper reads it
    assert len(_jobs("-m", "experiment=digits_compare")) == 20
    assert len(_jobs("-m", "experiment=digits_compare", "task=remove")) == 10


def test_a_sweep_of_no_job_is_one_line():
    from brittle.cli.validate import check_command_line
    assert check_command_line(["-m", "scorer=glob(zz*)"]) == ("the sweep scorer=glob(zz*) "
                                                              "expands to no job (a glob that "
                                                              "matches no option?)")


def test_a_sweep_without_multirun_is_one_line(tmp_path):
    p = subprocess.run([sys.executable, "run.py", "scorer=choice(esvm,l2)"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert p.returncode == 2 and errors == ["error: scorer=choice(esvm,l2) is a sweep; add -m "
                                            "(--multirun) to run one job per value"], \
        p.stderr[-800:]


def _sweep(tmp_path: Path, name: str, *args: str) -> list[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = run_brittle(["-m", *args, *FAST, f"cache_dir={tmp_path}/cache",
                     f"hydra.sweep.dir={tmp_path}/{name}"],
                    env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    fixed = {a for a in FAST if a != "progress=false"}  # run names leave execution keys out
    names = [d.name for d in (tmp_path / name).iterdir() if (d / "summary.json").exists()]
    return sorted(",".join(part for part in n.split(",") if part not in fixed) for n in names)



@pytest.mark.parametrize("name,args,jobs", [
    ("choice", ["scorer=choice(esvm,l2)"], ["scorer=esvm", "scorer=l2"]),
    ("glob", ["scorer=glob(l*)", "task=glob(mis*)"], ["scorer=l2,task=mislabel"]),
    ("range", ["seed=range(2)", "scorer=random"], ["scorer=random,seed=0", "scorer=random,seed=1"]),
    # lists as swept values (run names spell brackets as _)
    ("list", ["scorer=random", "targets.indices=[3],[5]"], ["scorer=random,targets.indices=_3_",
                                                         "scorer=random,targets.indices=_5_"]),
])
def test_each_form_runs_its_jobs(tmp_path, name, args, jobs):
    assert _sweep(tmp_path, name, *args) == jobs


def test_a_users_config_dir_adds_options(tmp_path):
    mine = tmp_path / "mine" / "scorer"
    mine.mkdir(parents=True)
    (mine / "nearest.yaml").write_text("# l2 under a name of my own\ndefaults:\n  - l2\n")
    base = [*FAST, f"cache_dir={tmp_path}/cache"]
    for how in (["--config-dir", str(tmp_path / "mine")],
                [f"hydra.searchpath=[file://{tmp_path / 'mine'}]"]):
        p = run_brittle([*how, *base, "scorer=nearest", f"hydra.run.dir={tmp_path}/run{len(how)}"],
                        env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
        assert p.returncode == 0, p.stderr[-1500:]
        assert "AUC" in p.stdout
    p = run_brittle([*base, "scorer=nearest"])
    assert p.returncode == 2 and "scorer=nearest is not an option of scorer" in p.stderr


def test_a_launcher_without_its_plugin_names_the_extra(monkeypatch):
    import brittle.cli.validate as validate
    monkeypatch.setitem(validate._LAUNCHERS, "joblib", "hydra_plugins.not_installed_launcher")
    problem = validate.check_command_line(["-m", "hydra/launcher=joblib", "scorer=esvm,l2"])
    assert problem == "hydra/launcher=joblib needs its Hydra plugin: pip install 'brittle[cluster]'"
