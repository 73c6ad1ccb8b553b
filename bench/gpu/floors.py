"""Parts of the GPU check that measure how close the GPU runs to its floors, with brittle's
probes (floor_probe.py, moco_probe.py):

- floors: seconds a model of trainer=paper arch=resnet9_ffcv and trainer=fast arch=airnet against
  the step floor of their arch at the recipe's batch size (floor_report);
- together_paper, together_fast: models a second of trainer.together loop | streams | vmap on the
  same jobs (compare_together): 8 FFCV ResNet-9s of 2 epochs 8 at a time, 8 airnets 4 at a time;
- moco_probe: one MoCo ResNet-18 step's images/s (views made on the device) and its fraction of
  the card's bf16 rate, bf16 against fp16, torch.compile off and on.
"""
from __future__ import annotations

from typing import Any, cast

from bench.gpu.common import Context, compose_cfg, cuda, engine_for

PAPER = ["arch=resnet9_ffcv", "trainer=paper"]
TINY_PAPER = ["trainer.recipe.epochs=1", "trainer.recipe.batch_size=100", "arch.model.width=8"]
FAST = ["arch=airnet", "trainer=fast"]
TINY_FAST = ["trainer.epochs=1", "trainer.batch_size=100", "arch.model.width=8"]


def _paper(ctx: Context, *extra: str) -> list[str]:
    over = [*ctx.cifar_base(), *PAPER, *extra, *(TINY_PAPER if ctx.smoke else [])]
    return over + ([] if cuda() else ["trainer.recipe.precision=fp32"])   # fp16: a GPU precision


def _fast(ctx: Context) -> list[str]:
    return [*ctx.cifar_base(), *FAST, *(TINY_FAST if ctx.smoke else [])]


def floors(ctx: Context) -> tuple[dict, str]:
    from bench.gpu.floor_probe import floor_report
    steps = 2 if ctx.smoke else 20
    out = {"paper_resnet9_ffcv": floor_report(engine_for(_paper(ctx)), [0], steps=steps),
           "fast_airnet": floor_report(engine_for(_fast(ctx)), [0] if ctx.smoke else [0, 1],
                                       steps=steps)}
    return out, "; ".join(f"{name}: {r['seconds_per_model']:.2f} s a model, floor "
                          f"{r['floor_seconds']:.2f} s ({r['ratio']:.2f}x)"
                          for name, r in out.items())


def _together(ctx: Context, overrides: list[str], concurrent: int) -> tuple[dict, str]:
    from bench.gpu.floor_probe import compare_together
    n, concurrent = (2, 2) if ctx.smoke else (8, concurrent)
    out = compare_together(engine_for(overrides), n_models=n, concurrent=concurrent)
    out["n_models"], out["concurrent"] = n, concurrent
    return out, f"{n} models, {concurrent} at a time: " + ", ".join(
        f"{mode} {r['models_per_second']:.2f}/s ({r['speedup']:.2f}x, agreement "
        f"{r['test_agreement_min']:.3f})" for mode, r in out.items() if isinstance(r, dict))


def together_paper(ctx: Context) -> tuple[dict, str]:
    return _together(ctx, _paper(ctx, "trainer.recipe.epochs=2"), concurrent=8)


def together_fast(ctx: Context) -> tuple[dict, str]:
    return _together(ctx, _fast(ctx), concurrent=4)


def moco_probe(ctx: Context) -> tuple[dict, str]:
    from omegaconf import OmegaConf

    from bench.gpu.moco_probe import moco_step_probe
    transform = cast(dict, OmegaConf.to_container(
        compose_cfg(["dataset=cifar10"]).dataset.ssl_transform, resolve=True))
    size: dict[str, Any] = {"batch": 512}
    if ctx.smoke:
        size = {"batch": 8, "width": 0.125, "steps": 2, "warmup": 1, "num_splits": 2,
                "memory_bank": 64}
    # inductor's C++ build alone takes minutes on a 2-core CPU: the smoke size leaves compile out
    compiles = (False, True) if cuda() or not ctx.smoke else (False,)
    out: dict[str, Any] = {}
    for precision in ("bf16", "fp16"):
        for compile_on in compiles:
            key = f"{precision}_compile_{'on' if compile_on else 'off'}"
            try:
                out[key] = moco_step_probe(precision=precision, compile=compile_on,
                                           transform=transform, **size)
            except Exception as exc:   # one setting failing leaves the others measured
                out[key] = {"error": f"{type(exc).__name__}: {exc}"}
    if len(compiles) == 1:
        out["compile_on"] = "skipped: --smoke on a CPU (inductor's C++ build takes minutes here)"
    return out, "; ".join(_probe_line(k, r) for k, r in out.items() if isinstance(r, dict))


def _probe_line(key: str, result: dict) -> str:
    if "error" in result:
        return f"{key}: error {result['error']}"
    share = result["fraction_of_bf16_peak"]
    return (f"{key} {result['images_per_second']:,.0f} images/s"
            + ("" if share is None else f" ({100 * share:.1f}% of bf16 peak)"))
