"""Checks of notebook 07 accept correct answers written differently and reject plausible mistakes."""
from __future__ import annotations

import torch

from tests import checkcases
from utils import digits, guidance
from utils.solvers import solve_ode


# ---- 7.1 nearest-neighbour distance
def nn_broadcast(x, reference):
    return ((x[:, None, :] - reference[None, :, :]) ** 2).sum(-1).min(dim=1).values.sqrt()


def nn_expanded(x, reference):  # |a|^2 + |b|^2 - 2 a.b, clamped: safe for identical points
    sq = (x**2).sum(1, keepdim=True) + (reference**2).sum(1) - 2 * x @ reference.T
    return sq.clamp(min=0).min(dim=1).values.sqrt()


def nn_loop(x, reference):
    return torch.stack([torch.linalg.norm(reference - row, dim=1).min() for row in x])


def nn_squared(x, reference):
    return torch.cdist(x, reference).pow(2).min(1).values


def nn_mean(x, reference):
    return torch.cdist(x, reference).mean(1)


def nn_argmin(x, reference):
    return torch.cdist(x, reference).argmin(1)


def nn_wrong_axis(x, reference):
    return torch.cdist(x, reference).min(0).values


def nn_l1(x, reference):
    return torch.cdist(x, reference, p=1).min(1).values


def nn_first_reference_row(x, reference):
    return torch.linalg.norm(x - reference[0], dim=1)


def nn_expanded_unclamped(x, reference):
    """|a|^2 + |b|^2 - 2 a.b unclamped: for a copied row rounding leaves about -1e-15 or +1e-15, depending on
    the CPU's kernels; the negative case (sqrt -> NaN) is set here, so that the test is the same everywhere."""
    sq = (x**2).sum(1, keepdim=True) + (reference**2).sum(1) - 2 * x @ reference.T
    sq = torch.where(torch.cdist(x, reference) == 0, torch.full_like(sq, -1e-15), sq)
    return sq.min(dim=1).values.sqrt()


# ---- 7.2 label dropout
def drop_bernoulli(y, p_uncond, null_label, generator):
    keep = torch.bernoulli(torch.full(y.shape, 1 - p_uncond), generator=generator).bool()
    return torch.where(keep, y, null_label)


def drop_clone(y, p_uncond, null_label, generator):
    out = y.clone()
    out[torch.rand(len(y), generator=generator) < p_uncond] = null_label
    return out


def drop_keep_swapped(y, p_uncond, null_label, generator):
    out = y.clone()
    out[torch.rand(len(y), generator=generator) >= p_uncond] = null_label
    return out


def drop_to_zero(y, p_uncond, null_label, generator):
    return torch.where(torch.rand(len(y), generator=generator) < p_uncond, 0, y)


def drop_in_place(y, p_uncond, null_label, generator):
    y[torch.rand(len(y), generator=generator) < p_uncond] = null_label
    return y


def drop_whole_batch(y, p_uncond, null_label, generator):
    if torch.rand(1, generator=generator).item() < p_uncond:
        return torch.full_like(y, null_label)
    return y.clone()


def drop_fixed_count(y, p_uncond, null_label, generator):  # not independent: exactly round(p n) dropped
    out = y.clone()
    out[torch.randperm(len(y), generator=generator)[: round(p_uncond * len(y))]] = null_label
    return out


def drop_bernoulli_rand_le(y, p_uncond, null_label, generator):
    u = torch.rand(y.shape, generator=generator)
    out = y.clone()
    out.masked_fill_(u <= p_uncond, null_label)
    return out


def drop_no_generator(y, p_uncond, null_label, generator):
    return torch.where(torch.rand(len(y)) < p_uncond, null_label, y)


# ---- 7.3 guided velocity
def guided_batched(model, x, t, y, w):
    both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, model.null_label)]))
    v_cond, v_uncond = both.chunk(2)
    return v_cond + w * (v_cond - v_uncond)


def guided_swapped(model, x, t, y, w):
    v_cond, v_uncond = model(x, t, y), model(x, t, torch.full_like(y, model.null_label))
    return (1 + w) * v_uncond - w * v_cond


def guided_ignores_w(model, x, t, y, w):
    return model(x, t, y)


def guided_interpolates(model, x, t, y, w):
    return (1 - w) * model(x, t, y) + w * model(x, t, torch.full_like(y, model.null_label))


def guided_null_is_zero(model, x, t, y, w):
    return (1 + w) * model(x, t, y) - w * model(x, t, torch.zeros_like(y))


def guided_null_hardcoded(model, x, t, y, w):
    return (1 + w) * model(x, t, y) - w * model(x, t, torch.full_like(y, 10))


# ---- 7.4 sampler
def sample_loop(model, x0, y, w, num_steps):
    x, dt = x0, 1.0 / num_steps
    for k in range(num_steps):
        t = torch.full((x.shape[0],), k * dt, dtype=x.dtype)
        x = x + dt * guidance.guided_velocity(model, x, t, y, w)
    return x


def sample_solve_ode(model, x0, y, w, num_steps):
    return solve_ode(lambda x, t: guidance.guided_velocity(model, x, t, y, w), x0,
                     num_steps=num_steps, method="euler").x


def sample_reversed(model, x0, y, w, num_steps):
    x, dt = x0, 1.0 / num_steps
    for k in range(num_steps):
        x = x + dt * guidance.guided_velocity(model, x, torch.full((len(x),), 1 - k * dt, dtype=x.dtype), y, w)
    return x


def sample_right_end(model, x0, y, w, num_steps):
    x, dt = x0, 1.0 / num_steps
    for k in range(1, num_steps + 1):
        x = x + dt * guidance.guided_velocity(model, x, torch.full((len(x),), k * dt, dtype=x.dtype), y, w)
    return x


def sample_unguided(model, x0, y, w, num_steps):
    return sample_loop(model, x0, y, 0.0, num_steps)


def sample_in_place(model, x0, y, w, num_steps):
    x, dt = x0, 1.0 / num_steps
    for k in range(num_steps):
        x += dt * guidance.guided_velocity(model, x, torch.full((len(x),), k * dt, dtype=x.dtype), y, w)
    return x


def sample_float_time(model, x0, y, w, num_steps):
    x, dt = x0, 1.0 / num_steps
    for k in range(num_steps):
        x = x + dt * guidance.guided_velocity(model, x, k * dt, y, w)
    return x


def sample_half_steps(model, x0, y, w, num_steps):  # dt = 1 / (2 N): stops at t = 1/2
    x, dt = x0, 0.5 / num_steps
    for k in range(num_steps):
        x = x + dt * guidance.guided_velocity(model, x, torch.full((len(x),), k * dt, dtype=x.dtype), y, w)
    return x


def sample_extra_step(model, x0, y, w, num_steps):
    return sample_loop(model, x0, y, w, num_steps + 1)


def guided_scale_convention(model, x, t, y, w):  # issue 20: the w' = 1 + w convention 07 warns about
    v_c, v_u = model(x, t, y), model(x, t, torch.full_like(y, model.null_label))
    return w * v_c + (1 - w) * v_u


CORRECT = {
    "7.1": [digits.nn_distances, nn_broadcast, nn_expanded, nn_loop],
    "7.2": [guidance.drop_labels, drop_bernoulli, drop_clone, drop_bernoulli_rand_le],
    "7.3": [guidance.guided_velocity, guided_batched],
    "7.4": [guidance.sample_guided, sample_loop, sample_solve_ode],
}
WRONG = {
    "7.1": [(nn_squared, "squared"), (nn_mean, "averaged"), (nn_argmin, "indices"),
            (nn_wrong_axis, "one number per reference row"), (nn_l1, "L1 (city-block)"),
            (nn_first_reference_row, "wrong value: the distances for 64-dimensional points"),
            (nn_expanded_unclamped, "NaN exactly at the rows that copy a reference row")],
    "7.2": [(drop_keep_swapped, "kept each label with probability p_uncond"), (drop_to_zero, "label of the digit 0"),
            (drop_in_place, "in place"), (drop_whole_batch, "each example separately"),
            (drop_no_generator, "generator"), (drop_fixed_count, "dropped independently")],
    "7.3": [(guided_swapped, "weights are swapped"), (guided_ignores_w, "w is ignored"),
            (guided_interpolates, "interpolated"), (guided_null_is_zero, "model.null_label"),
            (guided_null_hardcoded, "model.null_label"),
            (guided_scale_convention, "the other convention")],
    "7.4": [(sample_reversed, "wrong way"), (sample_right_end, "end of the step"), (sample_unguided, "ignored"),
            (sample_in_place, "in place"), (sample_extra_step, "num_steps + 1"),
            (sample_float_time, "tensor of shape (n,)"), (sample_half_steps, "should be")],
}

test_accepts, test_rejects = checkcases.parametrize_cases(CORRECT, WRONG)
