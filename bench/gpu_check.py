"""GPU check (`make gpu-check`): what brittle claims of a GPU, measured in one prepared script,
most of it through the command lines users type. Parts, in order (bench/gpu/parts.py; `--list`
shows each one's estimate and limit):

- default_job: `python run.py device=auto` (digits) from an empty cache;
- design_card: `python run.py experiment=cifar10_fast task=mislabel backbone.epochs=2
  targets.n=5 search.budget=4 search.n_test=1 reference.n_models=2` on full CIFAR-10, every
  stage's seconds read from the run's own records;
- paper_recipe: the paper presets' network and recipe (FFCV ResNet-9, trainer=paper) through
  `python run.py experiment=paper_cifar10 ...`: seconds a model, test accuracy;
- search_bench: `python bench/search.py` at one case and one round;
- airbench: airbench's train94 against brittle's trainer=fast arch=airnet, 3 seeds each;
- six_minutes: `python run.py -m experiment=cifar10_esvm_vs_random` and `python -m
  brittle.report`: stage seconds, each scorer's AUC, their paired difference with a 95% interval;
- floors, together_paper, together_fast, moco_probe: retraining against its step floor, the
  trainer.together modes, one MoCo step's rate against the card's bf16 peak;
- fast_recipe, paper_esvm, pretrain_views: the fast and paper recipes in-process, ESVM scoring of
  every test image (torch, cuML when importable, against scikit-learn), MoCo epoch throughput.

Each part runs in its own process with its own time limit; one that fails is recorded with its
error line and the others run. `--budget SECONDS` (default 480) skips, saying so, every part
whose estimate no longer fits. Figures go to bench/results/<date>-<device>.json (bench/record.py's
format, with torch and CUDA versions and the skipped parts), copied into $OUT when set. `--smoke`
runs every part at toy size on any device and writes to --out or a temporary file; parts that need
CIFAR-10 ($BRITTLE_CIFAR10, or the development copy beside the checkout) or CUDA are skipped
without them.

    python bench/gpu_check.py [--budget 480] [--parts a,b] [--smoke] [--out FILE] [--list]
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gpu.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
