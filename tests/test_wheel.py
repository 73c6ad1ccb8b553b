"""brittle as an installed tool: the wheel carries conf/ as brittle.conf, and its `brittle` command
runs from an empty directory outside the checkout (help, the default job, a sweep)."""
from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.helpers import CONF, ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(ROOT)], check=True, capture_output=True, timeout=300)
    return next(out.glob("brittle-*.whl"))


def test_the_wheel_carries_every_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"brittle/conf/{p.relative_to(CONF)}" for p in CONF.rglob("*.yaml")}
    assert wanted and wanted <= names, sorted(wanted - names)[:5]
    assert "brittle/cli/app.py" in names and not any(n.startswith(("conf/", "tests/"))
                                                     for n in names)


@pytest.mark.slow
def test_installed_command_runs_outside_the_checkout(wheel, tmp_path):
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run([str(py), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # pip installs the wheel (and its console script) into the new environment; the dependencies
    # (torch, Hydra, ...) come from this one, without its editable brittle
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    Path(purelib, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    script = env_dir / "bin" / "brittle"
    work = tmp_path / "empty"
    work.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BRITTLE_CACHE": str(tmp_path / "cache")}
    env.pop("PYTHONPATH", None)

    def brittle(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(script), *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=600)

    where = brittle("--cfg", "job", "--package", "_global_")
    assert where.returncode == 0, where.stderr[-1500:]
    origin = subprocess.run([str(py), "-c", "import brittle; print(brittle.__file__)"], cwd=work,
                            env=env, capture_output=True, text=True).stdout
    assert origin.startswith(purelib) and str(ROOT) not in origin
    helped = brittle("--help")
    assert (helped.returncode == 0 and "== Groups (group=option) ==" in helped.stdout
            and "scorer:" in helped.stdout)
    one = brittle()  # the default job, as a new user runs it
    assert one.returncode == 0, one.stderr[-2000:]
    assert "AUC" in one.stdout and "run directory: outputs/default" in one.stdout
    assert (work / "outputs" / "default" / "summary.json").exists()
    swept = brittle("-m", "scorer=esvm,random")
    assert swept.returncode == 0, swept.stderr[-2000:]
    runs = sorted(p.name for p in (work / "multirun").iterdir() if (p / "summary.json").exists())
    assert (len(runs) == 2 and any("scorer=esvm" in r for r in runs)
            and any("scorer=random" in r for r in runs))
