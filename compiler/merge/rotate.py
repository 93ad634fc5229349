"""sd-mecha's ``rotate``: align model A with model B by an orthogonal transform.

The orthogonal Procrustes solution of the (centred) 2-d views, raised to the fractional power
``alignment``: by eigendecomposition for tall matrices, and along the Stiefel manifold's
geodesic for wide ones (sd-mecha 1.1.8's ``log_stiefel`` / ``exp_stiefel``, step for step).
sd-mecha's per-key cache only saves work across merges, so it is left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from compiler.merge.arguments import Arguments

Transform = Callable[[Tensor, float, float, int], Tensor]


def rotate(args: Arguments) -> Tensor:
    """A rotated towards B by ``alignment``; ``alpha`` interpolates the part A keeps."""
    a, b, alpha = args["a"], args["b"], args["alpha"]
    alignment, centralization = args["alignment"], args["centralization"]
    eps, iters = args["stiefel_eps"], args["stiefel_max_iters"]
    assert isinstance(a, Tensor) and isinstance(b, Tensor) and isinstance(alpha, Tensor)
    assert isinstance(alignment, int | float) and isinstance(centralization, int | float)
    assert isinstance(eps, int | float) and isinstance(iters, int)
    if alpha.numel() == 1:
        if math.isclose(alignment, 0.0) and math.isclose(alpha.item(), 0.0):
            return a
        if math.isclose(alignment, 1.0) and math.isclose(alpha.item(), 1.0):
            return b
    if len(a.shape) <= 1 or torch.allclose(a.half(), b.half()):
        return torch.lerp(a, b, alpha)
    is_conv = len(a.shape) == 4 and math.prod(a.shape[-2:]) != 1
    split = 2 if is_conv else 1
    shape_2d = a.shape[:split].numel(), a.shape[split:].numel()
    a_2d, b_2d = a.reshape(*shape_2d), b.reshape(*shape_2d)
    a_mean, b_mean = a_2d.mean(0) * centralization, b_2d.mean(0) * centralization
    a_2d, b_2d = a_2d - a_mean, b_2d - b_mean
    alignment_is_float = not math.isclose(alignment, round(alignment))
    transform = orthogonal_procrustes(a_2d, b_2d, alignment_is_float)
    if alpha.numel() > 1 or not math.isclose(alpha.item(), 0):
        a_2d = torch.lerp(a_2d, transform(b_2d, -1, eps, iters), alpha)
    a_2d = transform(a_2d, float(alignment), float(eps), iters)
    a_2d = a_2d + torch.lerp(a_mean, b_mean, alignment)
    return a_2d.reshape_as(a)


def orthogonal_procrustes(a: Tensor, b: Tensor, cancel_reflection: bool) -> Transform:
    """The orthogonal map taking ``a`` closest to ``b``, as ``x, t -> x @ Q**t``."""
    n, p = a.shape[-2:]
    if n < p:
        b_q, b_r = torch.linalg.qr(b.mH)
        u, _, vh = torch.linalg.svd(a.mH @ b_r.mH, full_matrices=False)
        return _low_rank(u, (vh @ b_q.mH).mH)
    u, _, vh = torch.linalg.svd(a.mH @ b, full_matrices=False)
    if cancel_reflection:
        u[..., -1] /= torch.slogdet(u @ vh)[0]
    rotation = u @ vh

    def full_rank(x: Tensor, t: float, eps: float, iters: int) -> Tensor:
        if math.isclose(t, 0.0):
            return x
        return x @ _matrix_power(rotation, t)

    return full_rank


def _low_rank(u: Tensor, v: Tensor) -> Transform:
    def apply(x: Tensor, t: float, eps: float, iters: int) -> Tensor:
        if math.isclose(t, 0.0):
            return x
        if math.isclose(t, 1.0):
            return x - x @ v @ v.mH + x @ u @ v.mH
        if math.isclose(t, -1.0):
            return x - x @ u @ u.mH + x @ v @ u.mH
        uv_log = _log_stiefel(v, u, eps, iters)
        left = _exp_stiefel(v, uv_log * (t + 1) / 2)
        right = _exp_stiefel(v, uv_log * (1 - t) / 2)
        return x - x @ right @ right.mH + x @ left @ right.mH

    return apply


def _matrix_power(q: Tensor, t: float) -> Tensor:
    if math.isclose(t, 1.0):
        return q
    if math.isclose(t, -1.0):
        return q.mH
    if math.isclose(t, round(t)):
        power: Tensor = torch.linalg.matrix_power(q, round(t))
        return power
    eig_v, eig_vs = torch.linalg.eig(q)
    result: Tensor = eig_vs * (eig_v**t).unsqueeze(-2) @ eig_vs.mH
    return result.real.to(dtype=q.dtype)  # sd-mecha's cast: the imaginary part is dropped


def _qr_pos(x: Tensor) -> tuple[Tensor, Tensor]:
    q, r = torch.linalg.qr(x)
    s = torch.sign(r.diagonal(offset=0, dim1=-2, dim2=-1))
    s[s == 0] = 1
    return q * s.unsqueeze(-2), r / s.unsqueeze(-1)


def _exp_stiefel(u: Tensor, delta: Tensor) -> Tensor:
    n, p = u.shape[-2:]
    k = min(n - p, p)
    a = u.mH @ delta
    q, r = _qr_pos(delta - u @ a)
    q, r = q[..., :k], r[..., :k, :]
    w = torch.cat(
        (torch.cat((a, -r.mH), -1), torch.cat((r, torch.zeros_like(a[..., :k, :k])), -1)), -2
    )
    m = torch.linalg.matrix_exp(w)
    result: Tensor = u @ m[..., :p, :p] + q @ m[..., p:, :p]
    return result


def _orthogonal_complete(a: Tensor) -> Tensor:
    m, n = a.shape[-2:]
    if m <= n:
        return a
    proj = torch.eye(m, device=a.device, dtype=a.dtype)[:, n:] - a @ a.mH[..., n:]
    extension: Tensor = torch.linalg.householder_product(*torch.geqrf(proj))
    return torch.cat((a, extension), dim=-1)


def _log_stiefel(a: Tensor, b: Tensor, eps: float, max_iters: int) -> Tensor:
    original_shape = a.shape
    a = a.view(-1, original_shape[-2], original_shape[-1])
    b = b.view(-1, original_shape[-2], original_shape[-1])
    _, n, p = b.shape
    k = min(n - p, p)
    m = a.mH @ b
    q, n_mat = _qr_pos(b - a @ m)
    q, n_mat = q[..., :k], n_mat[..., :k, :]
    v = _orthogonal_complete(torch.cat((m, n_mat), dim=-2))
    r, sigma, r_hat_t = torch.linalg.svd(v[..., p:, p:])
    q @= r
    v[..., p:, :p] = r.mH @ n_mat
    v[..., :p, p:] @= r_hat_t.mH
    p_arange = torch.arange(p, p + k, device=v.device)
    v[..., p:, p:].zero_()
    v[..., p_arange, p_arange] = sigma
    v[v.slogdet()[0] < 0, ..., -1] *= -1
    k_arange = torch.arange(k, device=v.device, dtype=torch.long)
    log = v
    for _ in range(max_iters):
        log = _logm(v)
        c = log[..., p:, p:]
        c_norm_idx = torch.linalg.matrix_norm(c).argmax()
        if torch.linalg.matrix_norm(c[c_norm_idx]) <= eps:
            break
        s = log[..., p:, :p] @ log[..., p:, :p].mH / 12
        s[..., k_arange, k_arange] -= 0.5
        v[..., p:] @= torch.linalg.matrix_exp(_solve_symmetric_sylvester(s, c))
    delta: Tensor = a @ log[..., :p, :p] + q @ log[..., p:, :p]
    return delta.reshape(original_shape)


def _solve_symmetric_sylvester(s: Tensor, c: Tensor) -> Tensor:
    v, vs = torch.linalg.eigh(s)
    c_t = vs.mH @ c @ vs
    d = v.unsqueeze(-2) + v.unsqueeze(-1)
    result: Tensor = vs @ (c_t / d) @ vs.mH
    return result


def _logm(m: Tensor) -> Tensor:
    v, vs = torch.linalg.eig(m)
    v_log = v.unsqueeze(-2).log()
    result: Tensor = torch.linalg.solve(vs, vs * v_log, left=False)
    return result.real.to(m.dtype)
