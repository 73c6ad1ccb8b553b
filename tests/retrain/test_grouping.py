"""A model's arithmetic does not depend on its grouping: on a CPU, the same seed gives bitwise the
same logits whether its test's models train 5 together, 3 + 1 + 1, alone, or in a lockstep round
beside other targets' tests (other training sets and labels), with one torch thread or two."""
from __future__ import annotations

import pytest
import torch

from brittle.data.datasets import load_digits, normalized
from brittle.retrain.arches import MLP, SmallCNN
from brittle.retrain.recipe_trainer import RecipeTrainer
from brittle.retrain.trainer import Job

SEEDS = [11, 12, 13, 14, 15]


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    x = normalized(data.train.images, [0.3], [0.4])
    xt = normalized(data.test.images, [0.3], [0.4])
    return x, torch.as_tensor(data.train.labels), xt


def _logits(trainer, models, xt):
    return [trainer.logits(m, xt) for m in models]


def _groupings(trainer, build, x, y, keep):
    """The test's 5 models trained in each grouping the search can give them."""
    def train(seeds):
        return trainer.train(build, x, y, keep, seeds)

    relabelled = y.clone()
    relabelled[:30] = 4
    others = [Job(torch.arange(7, len(y)), y, 90), Job(torch.arange(len(y) - 7), relabelled, 91),
              Job(torch.arange(30, len(y)), y, 92)]
    mine = [Job(keep, y, s) for s in SEEDS]
    # a lockstep round: other targets' tests before, between and after this one's models
    round_jobs = [others[0], *mine[:2], others[1], *mine[2:], others[2]]
    in_round = trainer.train_jobs(build, x, round_jobs)
    return {"5 together": train(SEEDS),
            "3 + 1 + 1": train(SEEDS[:3]) + train(SEEDS[3:4]) + train(SEEDS[4:]),
            "alone": [train([s])[0] for s in SEEDS],
            "lockstep": [m for job, m in zip(round_jobs, in_round) if any(job is j for j in mine)]}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_the_same_seed_gives_the_same_logits_in_every_grouping(digits, arch, threads):
    x, y, xt = digits
    keep = torch.arange(23, len(y))   # a removal: kept images in the training set's order
    build = {"mlp": lambda: MLP([1, 8, 8], 10, hidden=[64]),
             "cnn": lambda: SmallCNN([1, 8, 8], 10, width=8)}[arch]
    trainer = RecipeTrainer({"epochs": 2, "batch_size": 64, "lr": 0.1, "translate": 1,
                             "label_smoothing": 0.1})
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        found = {name: _logits(trainer, models, xt)
                 for name, models in _groupings(trainer, build, x, y, keep).items()}
    finally:
        torch.set_num_threads(before)
    reference = found.pop("5 together")
    for name, logits in found.items():
        for seed, a, b in zip(SEEDS, reference, logits):
            assert torch.equal(a, b), (arch, name, seed, float((a - b).abs().max()))
    assert not torch.equal(reference[0], reference[1])   # the seeds are different models
