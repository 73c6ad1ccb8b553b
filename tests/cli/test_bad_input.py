"""Bad input through the real command line: settings of the wrong type, unknown keys, and files
that are not what they claim. Each exits non-zero with exactly one `error:` line, no traceback,
and leaves nothing that a later correct run would trust."""
from __future__ import annotations

import os
import subprocess
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from brittle.runtime.cache import _verify_files
from tests.helpers import ROOT, run_brittle

FAST = ["dataset.train_subset=300", "reference.n_models=1", "arch.recipe.epochs=2", "targets.n=2",
        "search.budget=1", "search.n_test=1", "search.max_support=8", "progress=false"]


def _files(base: Path) -> dict[str, Path]:
    """Inputs users really produce: non-checkpoints, truncated files, corrupt images."""
    out = {"garbage": base / "garbage.pth", "text": base / "notes.txt"}
    out["garbage"].write_bytes(np.random.default_rng(0).bytes(4096))
    out["text"].write_text("not a dataset\n")
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, base / "full.pth")
    out["truncated"] = base / "truncated.pth"
    out["truncated"].write_bytes((base / "full.pth").read_bytes()[:700])
    out["not_weights"] = base / "dm.pt"
    torch.save({"something": torch.zeros(3)}, out["not_weights"])
    # an image folder with one corrupt file among good ones
    tree = base / "tree"
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tree / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tree / split / cls / f"{i}.png")
    (tree / "train" / "b" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out["tree"] = tree
    # a CIFAR-style class-folder tarball with a corrupt JPEG
    tarball = base / "cifar.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for split in ("train", "test"):
            for cls in ("cat", "dog"):
                for i in range(2):
                    path = base / f"{split}_{cls}_{i}.jpg"
                    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(path)
                    tar.add(path, arcname=f"{split}/{cls}/{i:04d}.jpg")
        bad = base / "bad.jpg"
        bad.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")
        tar.add(bad, arcname="train/cat/9999.jpg")
    out["tarball"] = tarball
    # files of target indices (targets.indices=<file>): a fraction, one out of range, a repeat
    out["index_fractions"] = base / "index_fractions.npy"
    np.save(out["index_fractions"], np.array([3.0, 4.5]))
    out["index_range"] = base / "index_range.csv"
    out["index_range"].write_text("index\n3\n360\n")
    out["index_repeat"] = base / "index_repeat.txt"
    out["index_repeat"].write_text("5 9 5\n")
    return out


CASES = [
    # (id, arguments, the error line must contain)
    ("seed not an int", ["seed=abc"], "seed: the value 'abc' of type 'str' could not be converted to Integer"),
    ("targets.n not an int", ["targets.n=ten"], "targets.n: the value 'ten'"),
    ("shard not an int", ["targets.shard=1.5"], "targets.shard"),
    ("progress not a bool", ["progress=maybe"], "progress"),
    ("budget not an int", ["search.budget=x"], "search.budget='x' has the wrong type: brittle.counterfactual.searches.Bisection expects int"),
    ("C not a float", ["scorer.C=abc"], "scorer.C='abc' has the wrong type"),
    ("recipe lr not a float", ["arch.recipe.lr=fast"], "trainer.recipe.lr='fast' has the wrong type: Recipe expects float"),
    ("unknown top-level key", ["seeed=1"], "seeed is not a setting of this configuration; valid under the top level: seed"),
    ("unknown scorer key", ["scorer.Cx=1"], "scorer.Cx is not a setting of this configuration; valid under scorer"),
    ("added unknown parameter", ["+scorer.Cx=1"], "scorer.Cx is not a setting of brittle.scorers.esvm.scorer.ExemplarSVM; valid: C"),
    ("unknown group option", ["scorer=nosuch"], "scorer=nosuch is not an option of scorer; valid:"),
    ("unknown nested option", ["backbone/method=foo"], "backbone/method=foo is not an option of backbone/method"),
    ("bad value in a sweep", ["-m", "arch=mlp,resnet10"], "arch=resnet10 is not an option of arch"),
    ("bad device", ["device=tpu"], "device=tpu is not valid; use auto, cpu, cuda or cuda:N"),
    ("cuda without a GPU", ["device=cuda"], "device=cuda but no CUDA GPU is visible"),
    ("no targets", ["targets.n=0"], "targets.n=0 is out of range"),
    ("index outside the test set", ["targets.indices=[3,360]"], "targets.indices contains 360, outside the test set"),
    ("targets file missing", ["targets.indices=/nonexistent/test_100.npy"], "targets.indices=/nonexistent/test_100.npy does not exist; give a list"),
    ("targets file of fractions", ["targets.indices={index_fractions}"], "index_fractions.npy holds 4.5, not integer test indices"),
    ("targets file out of range", ["targets.indices={index_range}"], "index_range.csv contains 360, outside the test set; valid indices are 0..359"),
    ("targets file with a repeat", ["targets.indices={index_repeat}"], "index_repeat.txt repeats test index 5; give each index once"),
    ("support larger than a class", ["search.max_support=100000"], "search.max_support=100000 is larger than class"),
    ("bad shard", ["targets.shard=3", "targets.num_shards=2"], "targets.shard=3 with targets.num_shards=2"),
    ("bad sparsity", ["eval=lds", "eval.sparsify_top=2"], "eval.sparsify_top=2 is out of range"),
    ("bad backend", ["scorer.backend=svmlight"], "scorer.backend=svmlight is not valid"),
    ("bad augmentation place", ["backbone.augment_on=gpu"], "backbone.augment_on=gpu is not valid; use device or dataloader"),
    ("bad memory format", ["backbone.memory_format=nhwc"], "backbone.memory_format=nhwc is not valid; use channels_last or contiguous"),
    ("subset below the class count", ["dataset.train_subset=5"], "dataset.train_subset=5 is smaller than the number of classes"),
    ("cifar without a root", ["dataset=cifar10"], "dataset.root is not set"),
    ("cifar root missing", ["dataset=cifar10", "dataset.root=/nonexistent/cifar"], "dataset.root=/nonexistent/cifar does not exist"),
    ("cifar root a text file", ["dataset=cifar10", "dataset.root={text}"], "is not a readable tar archive"),
    ("cifar tarball with a corrupt image", ["dataset=cifar10", "dataset.root={tarball}"],
     "cannot decode train/cat/9999.jpg (1 image of train/ cannot be decoded)"),
    ("image folder with a corrupt image", ["dataset=imagefolder", "dataset.root={tree}", "dataset.image_size=8"],
     "cannot decode train/b/2.png in dataset.root="),
    ("grayscale with RGB statistics", ["dataset=huggingface", "dataset.path=/nonexistent", "dataset.channels=1"],
     "dataset.normalize.mean=[0.485, 0.456, 0.406] has 3 values, but dataset.channels=1; give one value per channel"),
    ("pretrained without a checkpoint", ["backbone=pretrained"], "this backbone (backbone.method: null) has no pretraining method"),
    ("checkpoint missing", ["backbone=pretrained", "backbone.checkpoint=/nonexistent.pth"],
     "backbone.checkpoint=/nonexistent.pth does not exist"),
    ("checkpoint of random bytes", ["backbone=pretrained", "backbone.checkpoint={garbage}"], "is not a PyTorch file"),
    ("truncated checkpoint", ["backbone=pretrained", "backbone.checkpoint={truncated}"], "is not a PyTorch file"),
    ("weights of random bytes", ["scorer=datamodels", "scorer.weights={garbage}"], "scorer.weights="),
    ("weights without a weight entry", ["scorer=datamodels", "scorer.weights={not_weights}"], "has no 'weight' entry"),
    ("weights missing", ["scorer=datamodels", "scorer.weights=/nonexistent.pt"], "does not exist"),
    ("magic with adamw", ["scorer=magic", "arch.recipe.optimizer=adamw"], "scorer=magic supports the sgd optimizer in fp32; trainer.recipe.optimizer=adamw: use sgd"),
    ("magic with dropout", ["scorer=magic", "arch=mobilenetv2"], "scorer=magic needs an arch without dropout or running instance statistics; arch=mobilenetv2 has Dropout: use arch=mlp or cnn"),
    ("magic with the fast trainer", ["scorer=magic", "trainer=fast"], "scorer=magic replays the recipe trainer (trainer=arch_recipe, paper or cpu); trainer=fast: use trainer=arch_recipe"),
    ("same-order LDS in fp16", ["eval=lds_same_order", "arch.recipe.precision=fp16"], "eval=lds_same_order supports the sgd optimizer in fp32; trainer.recipe.precision=fp16: use fp32"),
]


def _run(case_args: list[str], files: dict[str, Path], base: Path, name: str) -> tuple[subprocess.CompletedProcess, Path]:
    work = base / name.replace(" ", "_")
    args = [a.format(**files) for a in case_args]
    cmd = [*FAST, *args, f"cache_dir={work}/cache"]
    cmd.append(f"hydra.sweep.dir={work}/multirun" if "-m" in args else f"hydra.run.dir={work}/run")
    # three runs share the machine: one thread each, or OpenMP's spinning threads oversubscribe it
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return run_brittle(cmd, ROOT, env), work


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad")
    files = _files(base)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = pool.map(lambda c: _run(c[1], files, base, c[0]), CASES)
        return dict(zip([c[0] for c in CASES], results))


def test_there_are_at_least_25_distinct_bad_inputs():
    assert len({c[0] for c in CASES}) >= 25


@pytest.mark.heavy
@pytest.mark.parametrize("name,args,needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_error_line(outcomes, name, args, needle):
    p, work = outcomes[name]
    errors = [line for line in (p.stderr + p.stdout).splitlines() if line.startswith("error:")]
    assert p.returncode != 0, p.stdout[-500:]
    assert len(errors) == 1, p.stderr[-2000:]
    assert "Traceback" not in p.stderr + p.stdout and "HYDRA_FULL_ERROR" not in p.stderr, p.stderr[-2000:]
    assert needle in errors[0], errors[0]
    # nothing a later correct run would trust: no results, and every cache entry complete and sound
    assert not list(work.rglob("topk.npy")) and not list(work.rglob("summary.json"))
    for meta in work.rglob("meta.json"):
        _verify_files(meta.parent)
