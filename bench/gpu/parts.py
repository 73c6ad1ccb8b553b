"""The GPU check's parts in the order they run, each with what it needs, its estimated time on
one H200 and at --smoke size on a 2-core CPU (a process's start included), and its own time
limit. The estimates decide what fits a --budget; they are settings, to be corrected from the
parts' seconds in each GPU results file (bench/results/<date>-<device>.json).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from bench.gpu.common import Context


@dataclass(frozen=True)
class Part:
    name: str
    target: str          # "module:function", called with the Context: (figures, one line)
    estimate: float      # seconds on one H200
    smoke: float         # seconds at --smoke size on a 2-core CPU
    limit: float         # its own time limit on a GPU, seconds
    needs: tuple[str, ...] = ()   # "cifar", "cuda": skipped without them, no process started
    what: str = ""

    def estimate_for(self, smoke: bool) -> float:
        return self.smoke if smoke else self.estimate

    def limit_for(self, smoke: bool) -> float:
        # a CPU's speed drifts by a third between minutes: a toy part gets 4x its estimate
        return max(4 * self.smoke, 120.0) if smoke else self.limit

    def function(self) -> Callable[[Context], tuple[dict, str]]:
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)


PARTS: tuple[Part, ...] = (
    Part("default_job", "bench.gpu.commands:default_job", 45, 30, 180, (),
         "python run.py device=auto (digits), from an empty cache"),
    Part("design_card", "bench.gpu.commands:design_card", 120, 45, 300, ("cifar",),
         "python run.py experiment=cifar10_fast task=mislabel ... (the design card's command)"),
    Part("paper_recipe", "bench.gpu.commands:paper_recipe", 75, 30, 240, ("cifar",),
         "python run.py experiment=paper_cifar10 scorer=random ...: FFCV ResNet-9, trainer=paper"),
    Part("search_bench", "bench.gpu.commands:search_bench", 75, 50, 240, (),
         "python bench/search.py --rounds 1 --cases mlp_remove"),
    Part("magic_resnet9", "bench.gpu.commands:magic_resnet9", 180, 60, 420, ("cifar",),
         "python run.py experiment=paper_cifar10 scorer=magic ... (BatchNorm, fp32, 2 epochs)"),
    Part("airbench", "bench.gpu.compare_airbench:airbench_part", 60, 0, 200, ("cifar", "cuda"),
         "airbench's train94 against trainer=fast arch=airnet, 3 seeds each"),
    Part("six_minutes", "bench.gpu.esvm_vs_random:six_minutes", 390, 45, 480, ("cifar",),
         "python run.py -m experiment=cifar10_esvm_vs_random ... && python -m brittle.report"),
    Part("floors", "bench.gpu.floors:floors", 90, 25, 300, ("cifar",),
         "seconds a model against the step floor: paper/resnet9_ffcv, fast/airnet"),
    Part("together_paper", "bench.gpu.floors:together_paper", 60, 35, 240, ("cifar",),
         "trainer.together modes: 8 FFCV ResNet-9s of 2 epochs, 8 at a time"),
    Part("together_fast", "bench.gpu.floors:together_fast", 120, 40, 300, ("cifar",),
         "trainer.together modes: 8 airnets, 4 at a time"),
    Part("moco_probe", "bench.gpu.floors:moco_probe", 200, 20, 420, (),
         "MoCo ResNet-18 step: bf16 / fp16, compile off / on"),
    Part("fast_recipe", "bench.gpu.recipes:fast_recipe", 40, 20, 180, ("cifar",),
         "trainer=fast arch=airnet: seconds and TTA accuracy over --seeds"),
    Part("paper_esvm", "bench.gpu.recipes:paper_esvm", 120, 20, 360, ("cifar",),
         "trainer=paper arch=resnet9, then ESVM scoring of every test image on its features"),
    Part("pretrain_views", "bench.gpu.recipes:pretrain_views", 60, 30, 240, ("cifar",),
         "MoCo ResNet-18 epoch: device views against DataLoader views"),
)
BY_NAME = {part.name: part for part in PARTS}
