"""Working-set phase of the batched Exemplar SVM solver: exact Newton on each target's likely
support vectors, grown until no point outside violates its margin.

At the optimum of an exemplar SVM only a few dozen of thousands of negatives are inside the
margin (the ones most like the target); every other point has zero loss. So once a few full
Newton-CG steps (newton.py) have located the region, each target's problem is restricted to
a working set W of m candidates: in the span w = sum_j a_j u_j over W (u_j = y_j x~_j), the
primal Newton step is one small SPD solve with the Gram matrix of W, in float64. The restricted
problem is solved to optimality; then all points are scored once ([T, D] x [D, P]) and the ones
outside W that violate their margin join it. When none violate, the restricted optimum is the
optimum of the full problem (same KKT conditions). Cost per round: one gather and Gram
[T, m, m], a few m x m Cholesky factorisations, two [T, D] x [D, P] products.
"""
from __future__ import annotations

import torch


def exact_line_search(a: torch.Tensor, b: torch.Tensor, marg: torch.Tensor, dmarg: torch.Tensor,
                      c: torch.Tensor) -> torch.Tensor:
    """Exact minimiser s >= 0 of phi(s) = 0.5 |w + s d|^2 + sum_i c_i (1 - marg_i - s dmarg_i)_+^2.

    a = w.d, b = d.d [T]; marg, dmarg, c [T, n] (c = 0 masks a point out). phi' is piecewise
    linear and increasing; its kinks are where a point enters or leaves the margin. Sorting the
    kinks and accumulating the slope changes finds the root without iterating.
    """
    viol = 1.0 - marg
    const, lin = 2.0 * c * dmarg * (-viol), 2.0 * c * dmarg * dmarg
    active0 = (viol > 0) | ((viol == 0) & (dmarg < 0))
    zero = torch.zeros_like(const)
    c0 = a + torch.where(active0, const, zero).sum(1)
    l0 = b + torch.where(active0, lin, zero).sum(1)
    kink = viol / torch.where(dmarg == 0, torch.ones_like(dmarg), dmarg)
    moves = (dmarg != 0) & (c > 0) & (kink > 0)
    kink = torch.where(moves, kink, torch.full_like(kink, float("inf")))
    sign = torch.where(dmarg < 0, 1.0, -1.0).to(const.dtype)   # enters (dm < 0) or leaves
    order = kink.argsort(dim=1)
    t = kink.gather(1, order)
    dc = (sign * torch.where(moves, const, zero)).gather(1, order)
    dl = (sign * torch.where(moves, lin, zero)).gather(1, order)
    before_c = c0[:, None] + dc.cumsum(1) - dc            # slope coefficients left of each kink
    before_l = l0[:, None] + dl.cumsum(1) - dl
    slope_at = torch.where(torch.isfinite(t), before_c + before_l * t,
                           torch.full_like(t, float("inf")))
    first = (slope_at >= 0).to(torch.int8).argmax(dim=1, keepdim=True)  # root lies left of it
    seg_c = before_c.gather(1, first)[:, 0]
    seg_l = before_l.gather(1, first)[:, 0]
    s = -seg_c / seg_l.clamp_min(torch.finfo(seg_l.dtype).tiny)
    return s.clamp_min(0.0)


def _restricted_newton(q: torch.Tensor, alpha: torch.Tensor, c: torch.Tensor, g0: torch.Tensor,
                       tol: float, max_iter: int) -> tuple[torch.Tensor, bool]:
    """Optimal coefficients alpha [T, n] of the problem restricted to a working set, by Newton
    with exact line search. q [T, n, n] signed Gram (float64); c [T, n] loss weights, 0 = padding.
    Stops per target when the restricted gradient norm |w - sum 2 c (1 - m)_+ u| <= tol * g0;
    also returns whether every target got there within max_iter."""
    delta = 1.0 / (2.0 * c.clamp_min(torch.finfo(c.dtype).tiny))
    marg = (q @ alpha[..., None])[..., 0]
    for _ in range(max_iter + 1):
        resid = alpha - 2.0 * c * (1.0 - marg).clamp_min(0.0)
        gnorm = (resid[:, None, :] @ q @ resid[..., None])[:, 0, 0].clamp_min(0.0).sqrt()
        live = gnorm > tol * g0
        if not bool(live.any()):
            return alpha, True
        gamma = _active_minimiser(q, (marg < 1.0) & (c > 0), delta)
        step_dir = torch.where(live[:, None], gamma - alpha, torch.zeros_like(alpha))
        qd = (q @ step_dir[..., None])[..., 0]
        a = (alpha * qd).sum(1)
        b = (step_dir * qd).sum(1)
        s = exact_line_search(a, b, marg, qd, c)
        alpha = alpha + s[:, None] * step_dir
        marg = marg + s[:, None] * qd
    return alpha, False


def _active_minimiser(q: torch.Tensor, active: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Coefficients [T, n] minimising the quadratic with the active set [T, n] fixed:
    (Q_AA + diag(delta_A)) gamma_A = 1, zero off A. Factorised on the active points only
    (packed first, padded to the largest active count), which is what keeps it cheap."""
    size = max(int(active.sum(1).max()), 1)
    idx = torch.argsort((~active).to(torch.int8), dim=1, stable=True)[:, :size]     # [T, a]
    n = q.shape[1]
    sub = (q.gather(1, idx[:, :, None].expand(-1, -1, n))
           .gather(2, idx[:, None, :].expand(-1, size, -1)))
    act = active.gather(1, idx).to(q.dtype)
    system = sub * act[:, :, None] * act[:, None, :] \
        + torch.diag_embed(delta.gather(1, idx) * act + (1.0 - act))
    gamma = torch.cholesky_solve(act[..., None], torch.linalg.cholesky(system))[..., 0]
    return torch.zeros_like(delta).scatter(1, idx, gamma * act)


def _grown(u: torch.Tensor, q: torch.Tensor,
           added: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The working set's vectors u [T, n, D+1] and signed Gram q [T, n, n] with `added` [T, k, D+1]
    appended: only the new rows and columns are computed (the Gram is the phase's largest
    product)."""
    cross = u @ added.transpose(1, 2)                          # [T, n, k]
    corner = added @ added.transpose(1, 2)                     # [T, k, k]
    q = torch.cat([torch.cat([q, cross], dim=2), torch.cat([cross.transpose(1, 2), corner], dim=2)],
                  dim=1)
    return torch.cat([u, added], dim=1), q


def refine(xp: torch.Tensor, xn: torch.Tensor, c_pos: float, c_neg: float, zn: torch.Tensor,
           g0: torch.Tensor, tol: float, start: int, limit: int, grow: int,
           max_newton: int = 60) -> torch.Tensor | None:
    """The optimum w float64 [T, D+1], from an approximate iterate's decision values zn [T, P].

    xp [T, D+1] positives and xn [P, D+1] negatives (bias column appended). The working set starts
    as each target's `start` highest-scoring negatives; None when it would outgrow `limit` (the
    caller then keeps to full Newton-CG)."""
    t, p = zn.shape
    dev = xp.device
    if min(start, p) > limit:
        return None
    members = zn.topk(min(start, p), dim=1).indices       # [T, m] indices into xn
    valid = torch.ones_like(members, dtype=torch.bool)
    alpha = torch.zeros(t, members.shape[1] + 1, dtype=torch.float64, device=dev)
    u = torch.cat([xp.double()[:, None, :], -xn[members].double()], dim=1)   # [T, m+1, D+1]
    q = u @ u.transpose(1, 2)
    while True:  # every round adds at least one member, and members are capped by limit
        c = torch.cat([torch.full((t, 1), c_pos, dtype=torch.float64, device=dev),
                       torch.where(valid, c_neg, 0.0).double()], dim=1)
        alpha, solved = _restricted_newton(q, alpha, c, g0, 0.5 * tol, max_newton)
        if not solved:
            return None
        w = torch.bmm(alpha[:, None, :], u)[:, 0]
        zn = w.to(xn.dtype) @ xn.T
        inside = torch.zeros(t, p + 1, dtype=torch.bool, device=dev)
        inside.scatter_(1, torch.where(valid, members, p), True)  # padding points at column p
        outside = torch.where(inside[:, :p], torch.zeros_like(zn), (1.0 + zn).clamp_min(0.0))
        g_out = 2.0 * c_neg * (outside @ xn).double().norm(dim=1)
        if bool((g_out <= 0.5 * tol * g0).all()):
            return w
        k = min(int((outside > 0).sum(1).max()), grow)
        if k == 0 or members.shape[1] + k > limit:  # k == 0: the tolerance is below float noise
            return None
        new = outside.topk(k, dim=1)
        u, q = _grown(u, q, -xn[new.indices].double())
        members = torch.cat([members, new.indices], dim=1)
        valid = torch.cat([valid, new.values > 0], dim=1)
        alpha = torch.cat([alpha, alpha.new_zeros(t, k)], dim=1)
