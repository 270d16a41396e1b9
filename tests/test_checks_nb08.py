"""Checks of notebook 08 accept correct answers written differently and reject plausible mistakes."""
from __future__ import annotations

import torch

from tests import checkcases


# ---- 8.1 consistency parametrisation
def cf_ref(net, x, t):
    return x + (1 - t)[:, None] * net(x, t)


def cf_unsqueeze(net, x, t):
    return torch.addcmul(x, (1 - t).unsqueeze(1), net(x, t))


def cf_t(net, x, t):
    return x + t[:, None] * net(x, t)


def cf_no_skip(net, x, t):
    return (1 - t)[:, None] * net(x, t)


def cf_no_weight(net, x, t):
    return x + net(x, t)


def cf_minus(net, x, t):
    return x - (1 - t)[:, None] * net(x, t)


def cf_time_flipped(net, x, t):
    return x + (1 - t)[:, None] * net(x, 1 - t)


def cf_interpolating(net, x, t):
    return t[:, None] * x + (1 - t)[:, None] * net(x, t)


def cf_broadcast(net, x, t):
    return x + (1 - t) * net(x, t)


def cf_detached(net, x, t):
    with torch.no_grad():
        return x + (1 - t)[:, None] * net(x, t)


# ---- 8.2 shortcut target
def sc_ref(s, xt, t, d):
    with torch.no_grad():
        v1 = s(xt, t, d)
        return (v1 + s(xt + d[:, None] * v1, t + d, d)) / 2


def sc_detach(s, xt, t, d):
    v1 = s(xt, t, d)
    x_mid = xt + d.unsqueeze(-1) * v1
    return (0.5 * v1 + 0.5 * s(x_mid, t + d, d)).detach()


def sc_no_stopgrad(s, xt, t, d):
    v1 = s(xt, t, d)
    return (v1 + s(xt + d[:, None] * v1, t + d, d)) / 2


def sc_first_only(s, xt, t, d):
    with torch.no_grad():
        return s(xt, t, d)


def sc_sum(s, xt, t, d):
    with torch.no_grad():
        v1 = s(xt, t, d)
        return v1 + s(xt + d[:, None] * v1, t + d, d)


def sc_not_moved(s, xt, t, d):
    with torch.no_grad():
        return (s(xt, t, d) + s(xt, t + d, d)) / 2


def sc_same_time(s, xt, t, d):
    with torch.no_grad():
        v1 = s(xt, t, d)
        return (v1 + s(xt + d[:, None] * v1, t, d)) / 2


def sc_moved_2d(s, xt, t, d):
    with torch.no_grad():
        v1 = s(xt, t, d)
        return (v1 + s(xt + 2 * d[:, None] * v1, t + d, d)) / 2


def sc_no_step_size(s, xt, t, d):
    with torch.no_grad():
        v1 = s(xt, t, d)
        return (v1 + s(xt + v1, t + d, d)) / 2


def sc_big_steps(s, xt, t, d):
    with torch.no_grad():
        v1 = s(xt, t, 2 * d)
        return (v1 + s(xt + 2 * d[:, None] * v1, t + 2 * d, 2 * d)) / 2


# ---- 8.3 MeanFlow target
def _jvp(u, z, r, t, tz, tr, tt):
    return torch.func.jvp(u, (z, r, t), (tz, tr, tt))[1]


def mf_ref(u, z, r, t, v):
    du = _jvp(u, z, r, t, v, torch.zeros_like(r), torch.ones_like(t))
    return (v - (t - r)[:, None] * du).detach()


def mf_jvp_inside(u, z, r, t, v):
    def along(z_, t_):
        return u(z_, r, t_)
    _, du = torch.func.jvp(along, (z, t), (v, torch.ones_like(t)))
    return (v + (r - t).unsqueeze(1) * du).detach()


def mf_no_stopgrad(u, z, r, t, v):
    du = _jvp(u, z, r, t, v, torch.zeros_like(r), torch.ones_like(t))
    return v - (t - r)[:, None] * du


def mf_sign(u, z, r, t, v):
    du = _jvp(u, z, r, t, v, torch.zeros_like(r), torch.ones_like(t))
    return (v - (r - t)[:, None] * du).detach()


def mf_partial(u, z, r, t, v):
    du = _jvp(u, z, r, t, torch.zeros_like(z), torch.zeros_like(r), torch.ones_like(t))
    return (v - (t - r)[:, None] * du).detach()


def mf_spatial_only(u, z, r, t, v):
    du = _jvp(u, z, r, t, v, torch.zeros_like(r), torch.zeros_like(t))
    return (v - (t - r)[:, None] * du).detach()


def mf_moves_r(u, z, r, t, v):
    du = _jvp(u, z, r, t, v, torch.ones_like(r), torch.zeros_like(t))
    return (v - (t - r)[:, None] * du).detach()


def mf_moves_both(u, z, r, t, v):
    du = _jvp(u, z, r, t, v, torch.ones_like(r), torch.ones_like(t))
    return (v - (t - r)[:, None] * du).detach()


def mf_from_u(u, z, r, t, v):
    out, du = torch.func.jvp(u, (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
    return (out - (t - r)[:, None] * du).detach()


# ---- 8.4 k-step sampler
def smf_ref(u, x0, num_steps):
    times = torch.linspace(0, 1, num_steps + 1, dtype=x0.dtype)
    z = x0
    for k in range(num_steps):
        r, t = times[k + 1].expand(len(z)), times[k].expand(len(z))
        z = z + (r - t)[:, None] * u(z, r, t)
    return z


def smf_floats(u, x0, num_steps):
    z, h = x0, 1.0 / num_steps
    for k in range(num_steps):
        z = z + h * u(z, torch.full((len(z),), (k + 1) * h, dtype=z.dtype), torch.full((len(z),), k * h, dtype=z.dtype))
    return z


def _smf(step):
    def sample(u, x0, num_steps):
        times = torch.linspace(0, 1, num_steps + 1, dtype=x0.dtype)
        z = x0
        for k in range(num_steps):
            a, b = times[k].expand(len(z)), times[k + 1].expand(len(z))
            z = step(u, z, a, b, 1.0 / num_steps)
        return z
    return sample


smf_swapped = _smf(lambda u, z, a, b, h: z + h * u(z, a, b))
smf_euler = _smf(lambda u, z, a, b, h: z + h * u(z, a, a))
smf_minus = _smf(lambda u, z, a, b, h: z - h * u(z, b, a))
smf_no_h = _smf(lambda u, z, a, b, h: z + u(z, b, a))
smf_backwards = _smf(lambda u, z, a, b, h: z + h * u(z, 1 - a, 1 - b))


def smf_extra_step(u, x0, num_steps):
    return smf_ref(u, x0, num_steps + 1)


def smf_one_jump(u, x0, num_steps):
    n = len(x0)
    return x0 + u(x0, torch.ones(n, dtype=x0.dtype), torch.zeros(n, dtype=x0.dtype))


CORRECT = {
    "8.1": [cf_ref, cf_unsqueeze],
    "8.2": [sc_ref, sc_detach],
    "8.3": [mf_ref, mf_jvp_inside],
    "8.4": [smf_ref, smf_floats],
}

WRONG = {
    "8.1": [(cf_t, "weighted F by t"), (cf_no_skip, "no skip term"), (cf_no_weight, "without the factor (1 - t)"),
            (cf_minus, "sign of F is flipped"), (cf_time_flipped, "at time 1 - t"),
            (cf_interpolating, "not the parametrisation asked for"), (cf_broadcast, "broadcast along the coordinates"),
            (cf_detached, "no gradient to the network")],
    "8.2": [(sc_no_stopgrad, "stop-gradient"), (sc_first_only, "first step only"),
            (sc_sum, "added the two velocities"), (sc_not_moved, "evaluated at x_t, not where the first step"),
            (sc_same_time, "evaluated at time t"), (sc_moved_2d, "moved x by 2d"),
            (sc_no_step_size, "by the whole velocity"), (sc_big_steps, "queried the network at step size 2d")],
    "8.3": [(mf_no_stopgrad, "stop-gradient"), (mf_sign, "sign of (t - r) is wrong"),
            (mf_partial, "partial derivative"), (mf_spatial_only, "leaves out d_t u"), (mf_moves_r, "moved r instead"),
            (mf_moves_both, "moved r along with t"), (mf_from_u, "you started from u")],
    "8.4": [(smf_swapped, "passed the times as u(z, t_k, t_{k+1})"), (smf_euler, "instantaneous velocity"),
            (smf_minus, "jump goes the wrong way"), (smf_no_h, "whole average velocity"),
            (smf_backwards, "time runs from 1 to 0"), (smf_extra_step, "evaluated u 2 times"),
            (smf_one_jump, "evaluated u 1 times")],
}

test_accepts, test_rejects = checkcases.parametrize_cases(CORRECT, WRONG)
