"""Batched Exemplar SVMs in torch: many targets sharing one negative set, solved at once.

Same objective as liblinear's L2-regularised squared-hinge LinearSVC with balanced class weights
and a penalised bias (scikit-learn's `intercept_scaling=1`): for target t with positive x_t and
negatives X [P, D], with x~ = [x, 1],

    f(w) = 0.5 ||w||^2 + c_pos (1 - w.x~_t)_+^2 + c_neg sum_i (1 + w.x~_i)_+^2,
    c_pos = C (P+1) / 2,   c_neg = C (P+1) / (2P).

All targets of a chunk in one batch. From a least-squares start, the working-set phase
(working_set.py) solves each target's problem exactly on its few support-vector candidates,
grown until no other point violates its margin. When a chunk's support sets grow too large for
that, it falls back to Newton-CG on the generalised Hessian H = I + 2 sum_active c_i x~_i x~_i^T
(every step a pair of [T, D] x [D, P] matrix products) with an exact line search (f is a convex
piecewise quadratic along the direction).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from brittle.scorers.esvm.working_set import exact_line_search, refine


@dataclass(frozen=True)
class NewtonSettings:
    tol: float = 1e-8        # stop when ||grad|| <= tol * ||grad at w=0||, per target
    warm_steps: int = 0      # full Newton-CG steps before the working-set phase
    working_set: int = 64    # initial working-set size per target (working_set.py)
    grow: int = 64           # most violating points added to a working set per round
    max_working_set: int = 2048  # a chunk whose working sets outgrow this falls back to Newton-CG
    chunk: int = 0           # targets solved together (bounds the [chunk, m, m] Gram memory);
                             # 0: 64 on CPU, 512 on a GPU
    max_newton: int = 60
    cg_tol: float = 0.1      # inexact Newton: CG residual relative to ||grad||
    max_cg: int = 100


def _augment(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], dim=1)


def exemplar_svm_weights(pos: torch.Tensor, neg: torch.Tensor, C: float,
                         settings: NewtonSettings = NewtonSettings()) -> tuple[torch.Tensor, torch.Tensor]:
    """Each target's hyperplane w float64 [T, D+1] (bias last) for targets pos [T, D] against
    negatives neg [P, D], and whether its solve met the tolerance, bool [T]."""
    xp, xn = _augment(pos.float()), _augment(neg.float())
    n_neg = xn.shape[0]
    c_pos = C * (n_neg + 1) / 2.0
    c_neg = C * (n_neg + 1) / (2.0 * n_neg)
    start = _LeastSquaresStart(xn, c_neg)
    size = settings.chunk or (512 if xp.is_cuda else 64)
    weights, converged = [], []
    for lo in range(0, xp.shape[0], size):
        chunk = xp[lo:lo + size]
        # the tolerance is relative to the gradient at w = 0, as in liblinear
        g0 = (2.0 * c_neg * xn.sum(0)[None, :] - 2.0 * c_pos * chunk).norm(dim=1).double()
        w, zn, done = _newton_cg(chunk, xn, c_pos, c_neg, start(chunk, c_pos), g0, settings,
                                 settings.warm_steps)
        if not bool(done.all()):
            exact = refine(chunk, xn, c_pos, c_neg, zn, g0, settings.tol, settings.working_set,
                           settings.max_working_set, settings.grow, max_newton=settings.max_newton)
            if exact is not None:
                w, done = exact, torch.ones_like(done)
            else:  # support sets too large for the working-set phase
                w, _, done = _newton_cg(chunk, xn, c_pos, c_neg, w, g0, settings, settings.max_newton)
        weights.append(w.double())
        converged.append(done)
    return torch.cat(weights), torch.cat(converged)


def decisions(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """float64 decision values [T, N] of points x [N, D] under hyperplanes w [T, D+1]."""
    return w.double() @ _augment(x.double()).T


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

        def hess_vec(v: torch.Tensor, act_n: torch.Tensor = act_n, act_p: torch.Tensor = act_p) -> torch.Tensor:
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


def _conjugate_gradient(hess_vec, b: torch.Tensor, tol: torch.Tensor, max_iter: int) -> torch.Tensor:
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
