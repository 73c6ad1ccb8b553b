"""Batched Exemplar SVMs in torch: many targets sharing one negative set, solved at once.

Same objective as liblinear's L2-regularised squared-hinge LinearSVC with balanced class weights
and a penalised bias (scikit-learn's `intercept_scaling=1`): for target t with positive x_t and
negatives X [P, D], with x~ = [x, 1],

    f(w) = 0.5 ||w||^2 + c_pos (1 - w.x~_t)_+^2 + c_neg sum_i (1 + w.x~_i)_+^2,
    c_pos = C (P+1) / 2,   c_neg = C (P+1) / (2P).

Solved by Newton-CG on the generalised Hessian H = I + 2 sum_active c_i x~_i x~_i^T, with an exact
line search (f is a convex piecewise quadratic along the direction), all targets in one batch:
every step is a pair of [T, D] x [D, P] matrix products, which is why it is fast on CPU and GPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class NewtonSettings:
    tol: float = 1e-6        # stop when ||grad|| <= tol * ||grad at w=0||, per target
    max_newton: int = 60
    cg_tol: float = 0.1      # inexact Newton: CG residual relative to ||grad||
    max_cg: int = 100
    line_iters: int = 30


def _augment(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], dim=1)


def exemplar_svm_decisions(pos: torch.Tensor, neg: torch.Tensor, C: float,
                           settings: NewtonSettings = NewtonSettings()) -> torch.Tensor:
    """Decision values [T, P] of the negatives neg [P, D] under each target's exemplar SVM
    (targets pos [T, D]); float32 on pos's device."""
    xp, xn = _augment(pos.float()), _augment(neg.float())
    n_neg = xn.shape[0]
    c_pos = C * (n_neg + 1) / 2.0
    c_neg = C * (n_neg + 1) / (2.0 * n_neg)
    w = _least_squares_start(xp, xn, c_pos, c_neg)
    g0 = None
    done = torch.zeros(xp.shape[0], dtype=torch.bool, device=xp.device)
    for _ in range(settings.max_newton):
        zn = w @ xn.T                                  # [T, P]
        zp = (w * xp).sum(1)                           # [T]
        rn = (1.0 + zn).clamp_min(0.0)
        rp = (1.0 - zp).clamp_min(0.0)
        grad = w + 2.0 * c_neg * (rn @ xn) - 2.0 * c_pos * rp[:, None] * xp
        gnorm = grad.norm(dim=1)
        if g0 is None:  # the tolerance is relative to the gradient at w = 0, as in liblinear
            g0 = (2.0 * c_neg * xn.sum(0)[None, :] - 2.0 * c_pos * xp).norm(dim=1).clamp_min(1e-30)
        done |= gnorm <= settings.tol * g0
        if bool(done.all()):
            break
        act_n = (rn > 0).to(xn.dtype)
        act_p = (rp > 0).to(xn.dtype)

        def hess_vec(v: torch.Tensor) -> torch.Tensor:
            return (v + 2.0 * c_neg * ((act_n * (v @ xn.T)) @ xn)
                    + 2.0 * c_pos * (act_p * (v * xp).sum(1))[:, None] * xp)

        d = _conjugate_gradient(hess_vec, -grad, settings.cg_tol * gnorm, settings.max_cg)
        d[done] = 0.0
        step = _line_search(w, d, zn, zp, xn, xp, c_pos, c_neg, settings.line_iters)
        w = w + step[:, None] * d
    return w @ xn.T


def _least_squares_start(xp: torch.Tensor, xn: torch.Tensor, c_pos: float, c_neg: float) -> torch.Tensor:
    """The minimiser [T, D+1] of f with every hinge active (a least-squares problem): most
    negatives sit on the margin at the optimum, so this starts Newton close to it. One Cholesky
    of I + 2 c_neg X~^T X~ per negative set; each target's positive term by Sherman-Morrison."""
    eye = torch.eye(xn.shape[1], dtype=torch.float64, device=xn.device)
    chol = torch.linalg.cholesky(eye + 2.0 * c_neg * (xn.double().T @ xn.double()))
    xp64 = xp.double()
    rhs = 2.0 * c_pos * xp64 - 2.0 * c_neg * xn.double().sum(0)[None, :]
    a = torch.cholesky_solve(rhs.T, chol).T               # M^-1 rhs
    u = torch.cholesky_solve(xp64.T, chol).T              # M^-1 x_p
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


def _line_search(w, d, zn, zp, xn, xp, c_pos, c_neg, iters: int) -> torch.Tensor:
    """Exact minimiser s >= 0 of f(w + s d) per row: safeguarded Newton on the piecewise-linear
    derivative phi'(s), bracketed in [lo, hi]."""
    dn = d @ xn.T                      # [T, P]
    dp = (d * xp).sum(1)
    wd, dd = (w * d).sum(1), (d * d).sum(1)

    def slope(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rn = (1.0 + zn + s[:, None] * dn).clamp_min(0.0)
        rp = (1.0 - zp - s * dp).clamp_min(0.0)
        first = wd + s * dd + 2.0 * c_neg * (rn * dn).sum(1) - 2.0 * c_pos * rp * dp
        second = dd + 2.0 * c_neg * ((rn > 0) * dn * dn).sum(1) + 2.0 * c_pos * (rp > 0) * dp * dp
        return first, second

    t = zn.shape[0]
    lo = torch.zeros(t, dtype=zn.dtype, device=zn.device)
    hi = torch.ones_like(lo)
    for _ in range(20):  # grow hi until the slope turns non-negative (rarely needed)
        g, _ = slope(hi)
        grow = g < 0
        if not bool(grow.any()):
            break
        lo = torch.where(grow, hi, lo)
        hi = torch.where(grow, hi * 2.0, hi)
    s = hi.clone()
    for _ in range(iters):
        g, h = slope(s)
        lo = torch.where(g < 0, s, lo)
        hi = torch.where(g >= 0, s, hi)
        newton = s - g / h.clamp_min(1e-30)
        inside = (newton > lo) & (newton < hi)
        s_next = torch.where(inside, newton, 0.5 * (lo + hi))
        if bool(((s_next - s).abs() <= 1e-7 * s.abs().clamp_min(1e-12)).all()):
            s = s_next
            break
        s = s_next
    return s
