"""Batched Exemplar SVMs in torch: many targets sharing one negative set, solved at once.

Same objective as liblinear's L2-regularised squared-hinge LinearSVC with balanced class weights
and a penalised bias (scikit-learn's `intercept_scaling=1`): for target t with positive x_t and
negatives X [P, D], with x~ = [x, 1],

    f(w) = 0.5 ||w||^2 + c_pos (1 - w.x~_t)_+^2 + c_neg sum_i (1 + w.x~_i)_+^2,
    c_pos = C (P+1) / 2,   c_neg = C (P+1) / (2P).

All targets of a chunk in one batch. From a least-squares start, the working-set phase
(working_set.py) solves each target's problem exactly on its few support-vector candidates,
grown until no other point violates its margin. A target whose support set grows too large for
that (found by halving a chunk that fails) falls back to Newton-CG on the generalised Hessian
H = I + 2 sum_active c_i x~_i x~_i^T (every step a pair of [T, D] x [D, P] matrix products) with
an exact line search (f is a convex piecewise quadratic along the direction).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from brittle.runtime.memory import budget, is_out_of_memory, rows_within
from brittle.scorers.esvm.working_set import exact_line_search, refine


@dataclass(frozen=True)
class NewtonSettings:
    tol: float = 1e-8        # stop when ||grad|| <= tol * ||grad at w=0||, per target
    warm_steps: int = 0      # full Newton-CG steps before the working-set phase
    working_set: int = 64    # initial working-set size per target (working_set.py)
    grow: int = 64           # most violating points added to a working set per round
    max_working_set: int = 2048  # a chunk whose working sets outgrow this falls back to Newton-CG
    chunk: int = 0           # targets solved together; 0: sized from memory_budget (chunk_size)
    memory_budget: int = 0   # bytes a chunk may use; 0: half of the device's free memory
    max_newton: int = 60
    cg_tol: float = 0.1      # inexact Newton: CG residual relative to ||grad||
    max_cg: int = 100


def _augment(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], dim=1)


def exemplar_svm_weights(pos: torch.Tensor, neg: torch.Tensor, C: float,
                         settings: NewtonSettings = NewtonSettings()
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each target's hyperplane w float64 [T, D+1] (bias last) for targets pos [T, D] against
    negatives neg [P, D], and whether its solve met the tolerance, bool [T]. Targets are solved
    in chunks sized from the memory budget (`chunk_size`)."""
    xp, xn = _augment(pos.float()), _augment(neg.float())
    n_neg = xn.shape[0]
    c_pos = C * (n_neg + 1) / 2.0
    c_neg = C * (n_neg + 1) / (2.0 * n_neg)
    start = _LeastSquaresStart(xn, c_neg)
    size = chunk_size(settings, xp.shape[1], n_neg, xp.device)
    weights, converged = [], []
    for lo in range(0, xp.shape[0], size):
        chunk = xp[lo:lo + size]
        # the tolerance is relative to the gradient at w = 0, as in liblinear
        g0 = (2.0 * c_neg * xn.sum(0)[None, :] - 2.0 * c_pos * chunk).norm(dim=1).double()
        w, zn, done = _newton_cg(chunk, xn, c_pos, c_neg, start(chunk, c_pos), g0, settings,
                                 settings.warm_steps)
        if not bool(done.all()):
            exact, solved = _refine_split(chunk, xn, c_pos, c_neg, zn, g0, settings)
            w = torch.where(solved[:, None], exact.to(w.dtype), w)
            done = solved.clone()
            hard = torch.nonzero(~solved).flatten()
            if len(hard):  # support sets too large for the working-set phase: full Newton-CG
                w_hard, _, done_hard = _newton_cg(chunk[hard], xn, c_pos, c_neg, w[hard], g0[hard],
                                                  settings, settings.max_newton)
                w[hard], done[hard] = w_hard, done_hard
        weights.append(w.double())
        converged.append(done)
    return torch.cat(weights), torch.cat(converged)


def bytes_per_target(max_working_set: int, dim: int, n_neg: int) -> int:
    """Peak bytes one target of a chunk needs: in the working-set phase a float64 Gram, its active
    sub-matrix, the system and its Cholesky factor ([m+1, m+1] each), the members' vectors
    ([m+1, D+1], twice) and about eight float64 rows over the negatives ([P])."""
    m = int(max_working_set) + 1
    return 8 * (4 * m * m + 2 * m * (int(dim) + 1) + 8 * int(n_neg))


def chunk_size(settings: NewtonSettings, dim: int, n_neg: int, device: torch.device) -> int:
    """Targets solved together: `settings.chunk` when set; else as many as the memory budget
    holds at the largest working set, capped at 512 on a GPU and 64 on a CPU (past those, larger
    batches stop being faster)."""
    if settings.chunk > 0:
        return int(settings.chunk)
    cap = 512 if device.type == "cuda" else 64
    return rows_within(budget(device, settings.memory_budget),
                       bytes_per_target(settings.max_working_set, dim, n_neg), cap)


def _refine_split(chunk: torch.Tensor, xn: torch.Tensor, c_pos: float, c_neg: float,
                  zn: torch.Tensor, g0: torch.Tensor,
                  settings: NewtonSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """The working-set phase on a chunk: w float64 [T, D+1] and which rows it solved, bool [T].
    Where it fails for the chunk (a working set outgrows its limit, or memory runs out), it is
    tried on each half, down to single targets, so one hard target leaves its chunk's other
    targets to the exact phase and alone goes on to Newton-CG."""
    try:
        w = refine(chunk, xn, c_pos, c_neg, zn, g0, settings.tol, settings.working_set,
                   settings.max_working_set, settings.grow, max_newton=settings.max_newton)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
        if not is_out_of_memory(exc) or len(chunk) == 1:
            raise
        w = None
    if w is not None:
        return w, torch.ones(len(chunk), dtype=torch.bool, device=chunk.device)
    if len(chunk) == 1:
        return torch.zeros(1, chunk.shape[1], dtype=torch.float64, device=chunk.device), \
            torch.zeros(1, dtype=torch.bool, device=chunk.device)
    half = len(chunk) // 2
    parts = [_refine_split(chunk[sl], xn, c_pos, c_neg, zn[sl], g0[sl], settings)
             for sl in (slice(0, half), slice(half, None))]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def relative_gradient(w: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                      C: float) -> torch.Tensor:
    """||grad f(w_t)|| / ||grad f(0)|| float64 [T] for hyperplanes w [T, D+1] (bias last) of
    targets pos [T, D] against negatives neg [P, D]: the stopping rule of this solver (and of
    liblinear's primal solvers), usable on any solver's answer (cuML reports no iteration count)."""
    xp, xn = _augment(pos.double()), _augment(neg.double())
    n_neg = xn.shape[0]
    c_pos, c_neg = C * (n_neg + 1) / 2.0, C * (n_neg + 1) / (2.0 * n_neg)
    w = w.double()
    rn = (1.0 + w @ xn.T).clamp_min(0.0)
    rp = (1.0 - (w * xp).sum(1)).clamp_min(0.0)
    grad = w + 2.0 * c_neg * (rn @ xn) - 2.0 * c_pos * rp[:, None] * xp
    g0 = 2.0 * c_neg * xn.sum(0)[None, :] - 2.0 * c_pos * xp
    return grad.norm(dim=1) / g0.norm(dim=1)


def decisions(w: torch.Tensor, x: torch.Tensor, rows: int = 8192) -> torch.Tensor:
    """float64 decision values [T, N] of points x [N, D] under hyperplanes w [T, D+1] (bias
    last), in float64 whatever x's type: converted `rows` points at a time, not all at once."""
    w = w.double()
    out = torch.empty(w.shape[0], x.shape[0], dtype=torch.float64, device=w.device)
    for lo in range(0, x.shape[0], rows):
        out[:, lo:lo + rows] = torch.addmm(w[:, -1:], w[:, :-1],
                                           x[lo:lo + rows].to(w.device, torch.float64).T)
    return out


def exemplar_svm_decisions(pos: torch.Tensor, neg: torch.Tensor, C: float,
                           settings: NewtonSettings = NewtonSettings()) -> torch.Tensor:
    """Decision values float64 [T, P] of the negatives neg [P, D] under each target's exemplar
    SVM (targets pos [T, D])."""
    return decisions(exemplar_svm_weights(pos, neg, C, settings)[0], neg)


def _newton_cg(xp: torch.Tensor, xn: torch.Tensor, c_pos: float, c_neg: float, w: torch.Tensor,
               g0: torch.Tensor, settings: NewtonSettings, steps: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Up to `steps` Newton-CG steps on the full problem from w [T, D+1], all targets at once;
    returns w, its decision values [T, P] and which targets met the tolerance."""
    for _ in range(steps + 1):
        zn = w @ xn.T                                  # [T, P]
        zp = (w * xp).sum(1)                           # [T]
        rn = (1.0 + zn).clamp_min(0.0)
        rp = (1.0 - zp).clamp_min(0.0)
        grad = w + 2.0 * c_neg * (rn @ xn) - 2.0 * c_pos * rp[:, None] * xp
        gnorm = grad.norm(dim=1)
        done = gnorm.double() <= settings.tol * g0
        if bool(done.all()) or steps == 0:
            break
        steps -= 1
        act_n = (rn > 0).to(xn.dtype)
        act_p = (rp > 0).to(xn.dtype)

        def hess_vec(v: torch.Tensor, act_n: torch.Tensor = act_n,
                     act_p: torch.Tensor = act_p) -> torch.Tensor:
            return (v + 2.0 * c_neg * ((act_n * (v @ xn.T)) @ xn)
                    + 2.0 * c_pos * (act_p * (v * xp).sum(1))[:, None] * xp)

        d = _conjugate_gradient(hess_vec, -grad, settings.cg_tol * gnorm, settings.max_cg)
        d[done] = 0.0
        dn, dp = d @ xn.T, (d * xp).sum(1)
        # margins y z of [positive, negatives] and their change along d
        marg = torch.cat([zp[:, None], -zn], dim=1)
        dmarg = torch.cat([dp[:, None], -dn], dim=1)
        c = torch.cat([torch.full_like(zp[:, None], c_pos), torch.full_like(zn, c_neg)], dim=1)
        step = exact_line_search((w * d).sum(1), (d * d).sum(1), marg, dmarg, c)
        w = w + step[:, None] * d
    return w, zn, done


class _LeastSquaresStart:
    """The minimiser [T, D+1] of f with every hinge active (a least-squares problem), a start
    from which one Newton step already finds a small active set. One Cholesky of
    M = I + 2 c_neg X~^T X~ per negative set; each target's positive term by Sherman-Morrison.
    Only a starting point, so the Gram may be float32."""

    def __init__(self, xn: torch.Tensor, c_neg: float):
        eye = torch.eye(xn.shape[1], dtype=torch.float64, device=xn.device)
        self.chol = torch.linalg.cholesky(eye + 2.0 * c_neg * (xn.T @ xn).double())
        self.neg_sum = 2.0 * c_neg * xn.sum(0).double()

    def __call__(self, xp: torch.Tensor, c_pos: float) -> torch.Tensor:
        xp64 = xp.double()
        a = torch.cholesky_solve((2.0 * c_pos * xp64 - self.neg_sum[None, :]).T, self.chol).T
        u = torch.cholesky_solve(xp64.T, self.chol).T              # M^-1 x_p
        coef = 2.0 * c_pos * (xp64 * a).sum(1) / (1.0 + 2.0 * c_pos * (xp64 * u).sum(1))
        return (a - coef[:, None] * u).to(xp.dtype)


def _conjugate_gradient(hess_vec, b: torch.Tensor, tol: torch.Tensor,
                        max_iter: int) -> torch.Tensor:
    """Batched CG for H x = b, rows independent; stops per row when ||r|| <= tol."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = (r * r).sum(1)
    for _ in range(max_iter):
        live = rs.sqrt() > tol
        if not bool(live.any()):
            break
        hp = hess_vec(p)
        alpha = torch.where(live, rs / (p * hp).sum(1).clamp_min(1e-30), torch.zeros_like(rs))
        x = x + alpha[:, None] * p
        r = r - alpha[:, None] * hp
        rs_new = (r * r).sum(1)
        beta = torch.where(live, rs_new / rs.clamp_min(1e-30), torch.zeros_like(rs))
        p = r + beta[:, None] * p
        rs = rs_new
    return x
