"""P, the perturb pass: its Adam update against a float64 numpy reference computed from
the same inputs (theta, m, v before the update and the accumulator G filled), and the
perturbed copies theta +- eps delta it writes for the renderer."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import Mesh, Settings
from optimizer.gpu import read_buffer
from optimizer.hashing import perturbation_signs
from optimizer.surface.mesh import geom_node, grid
from optimizer.parameters import ADAM_EPSILON
from optimizer.constants import FIXED_SCALE, LOSS_SLOT_SIZE
from optimizer.sge import perturbation_seed
from sge_testlib import accumulator_of


def schedule(step: int) -> float:
    return 0.5 + 0.25 * step  # distinct per step: an off-by-one in the step shows


def epsilon_schedule(step: int) -> float:
    return 1.25 - 0.25 * step


def scene(position_group=0, color_group=0, normalised=True):
    """A 3 x 3 grid in view, one triangle far outside it (its vertices 9-11 never
    contribute), colors at the ends of their range so that clamping happens."""
    rng = np.random.default_rng(7)
    positions, triangles = grid(3, -0.7, 0.7)
    positions = np.concatenate([positions, [[2.0, 2.0, 0.0], [2.5, 2.0, 0.0], [2.0, 2.5, 0.0]]]).astype(np.float32)
    triangles = np.concatenate([triangles, [[9, 10, 11]]]).astype(np.int32)
    colors = rng.uniform(0.2, 0.8, (12, 3)).astype(np.float32)
    colors.ravel()[::3] = 0.0
    colors.ravel()[1::3] = 1.0
    target_positions = positions + np.float32(0.05) * rng.standard_normal(positions.shape).astype(np.float32)
    target_colors = rng.uniform(0.0, 1.0, (12, 3)).astype(np.float32)
    mesh = Mesh(positions, triangles, colors,
                position_settings=Settings(0.03, 0.01, group=position_group, normalised=normalised),
                color_settings=Settings(0.03, 0.05, (0.0, 1.0), group=color_group, normalised=normalised))
    return mesh, geom_node("reference", target_positions, triangles, target_colors)


VIEW = np.array([[0.95, -0.2, 0, 0.02], [0.2, 0.95, 0, -0.03], [0, 0, 1, 0], [0, 0, 0, 1]])


def snapshot(context, parameter_set):
    theta = parameter_set.values(context).ravel().astype(np.float64)
    m, v = (a.ravel().astype(np.float64) for a in parameter_set.moments(context))
    return theta, m, v


def image_delta(context, optimizer, step):
    """sum_p Delta_p of a step, from its loss-history slot (what the global estimator uses)."""
    history = read_buffer(context, optimizer.loss_history).reshape(-1, LOSS_SLOT_SIZE).astype(np.int64)
    low, high = history[step % len(history), 2:4]
    return float(((high << 32) + (low & 0xFFFFFFFF)) / FIXED_SCALE)


def adam_reference(state, sums, counts, signs, settings, t, scale, components, epsilon_scale=1.0):
    """Adam on the parameters whose element had contributions (n > 0), in float64: the
    estimate sum / n (a normalised set) or the sum itself. ``epsilon_scale``: the epsilon
    schedule's factor at the step being finished."""
    theta, m, v = state
    element = np.arange(theta.size) // components
    s, n = sums[element], counts[element]
    active = n > 0
    divisor = np.where(active, n, 1.0) if settings.normalised else 1.0
    g = np.where(active, signs * s / (2.0 * settings.epsilon * epsilon_scale * divisor), 0.0)
    b1, b2 = (float(np.float32(b)) for b in settings.betas)
    m_new = b1 * m + (1.0 - b1) * g
    v_new = b2 * v + (1.0 - b2) * g * g
    m_hat = m_new / (1.0 - b1 ** t)
    v_hat = v_new / (1.0 - b2 ** t)
    unclamped = theta - settings.learning_rate * scale * m_hat / (np.sqrt(v_hat) + ADAM_EPSILON)
    theta_new = np.clip(unclamped, *settings.value_range)
    clamped = active & (theta_new != unclamped)
    return (np.where(active, theta_new, theta), np.where(active, m_new, m), np.where(active, v_new, v)), active, clamped


def assert_update(name, before, after, expected):
    theta0 = before[0]
    (theta, m, v), (theta_e, m_e, v_e) = after, expected
    # theta to 1e-5 of its scale; the step itself to 2e-4: P computes the bias corrections
    # 1 - beta^t with float32 pow(), which llvmpipe gets to ~1e-7 (6e-5 of 1 - 0.999).
    np.testing.assert_allclose(theta, theta_e, rtol=1e-5, atol=1e-5 * np.abs(theta_e).max(), err_msg=f"{name}: theta")
    np.testing.assert_allclose(theta - theta0, theta_e - theta0, rtol=2e-4, atol=2e-7, err_msg=f"{name}: step")
    np.testing.assert_allclose(m, m_e, rtol=1e-5, atol=1e-6 * np.abs(m_e).max(), err_msg=f"{name}: m")
    np.testing.assert_allclose(v, v_e, rtol=1e-5, atol=1e-6 * np.abs(v_e).max(), err_msg=f"{name}: v")


def contributions(context, optimizer, parameter_set, step, image_deltas):
    """(sums, counts) per element that P uses to finish ``step``."""
    if optimizer.estimator == "global":
        elements = parameter_set.shape[0]
        return np.full(elements, image_deltas[step]), np.ones(elements)
    return accumulator_of(context, parameter_set, step % 2)


@pytest.mark.parametrize("estimator, normalised", [("per-pixel", True), ("per-pixel", False), ("global", True)])
def test_adam_update_matches_numpy(context, make_optimizer, estimator, normalised):
    mesh, reference = scene(normalised=normalised)
    optimizer = make_optimizer(mesh, reference, (32, 32), estimator=estimator, seed=4,
                               learning_rate_schedule=schedule, epsilon_schedule=epsilon_schedule)
    sets = (mesh.positions, mesh.colors)
    states, accumulated, image_deltas = [], [], []
    for _ in range(2):
        optimizer.step(VIEW)
        optimizer.sync()
        step = optimizer.step_index - 1
        image_deltas.append(image_delta(context, optimizer, step))
        states.append({s: snapshot(context, s) for s in sets})
        accumulated.append({s: contributions(context, optimizer, s, step, image_deltas) for s in sets})
    optimizer.finish()  # applies step 1's update, Adam's t = 2
    states.append({s: snapshot(context, s) for s in sets})

    clamped = 0
    for step in (0, 1):  # the update of step s is applied by step s + 1's P (or finish)
        for parameter_set in sets:
            sums, counts = accumulated[step][parameter_set]
            signs = perturbation_signs(parameter_set.count, parameter_set.set_id,
                                       perturbation_seed(optimizer.seed, step))
            expected, active, clamps = adam_reference(states[step][parameter_set], sums, counts, signs,
                                              parameter_set.settings, t=step + 1, scale=schedule(step),
                                              components=parameter_set.shape[1],
                                              epsilon_scale=epsilon_schedule(step))
            name = f"{parameter_set.name}, update of step {step}"
            assert_update(name, states[step][parameter_set], states[step + 1][parameter_set], expected)
            assert np.any(states[step + 1][parameter_set][0] != states[step][parameter_set][0]), name
            clamped += np.count_nonzero(clamps)
            if estimator == "per-pixel":
                # The vertices of the triangle outside the view have no contributions.
                assert not active[27:].any() and active[:27].all(), name
                np.testing.assert_array_equal(states[step + 1][parameter_set][0][27:],
                                              states[0][parameter_set][0][27:], err_msg=name)
                assert np.all(states[step + 1][parameter_set][1][27:] == 0.0), name
            else:
                assert active.all(), name  # SPSA: every parameter takes the image's Delta
    assert clamped > 0, "no color stayed at the end of its range: the clamp went untested"


def test_perturbed_copies(context, make_optimizer):
    """P writes theta + eps delta_i and theta - eps delta_i with the step's signs (eps
    scaled by the epsilon schedule at that step)."""
    mesh, reference = scene()
    optimizer = make_optimizer(mesh, reference, (32, 32), seed=9, epsilon_schedule=epsilon_schedule)
    for _ in range(3):
        optimizer.step(VIEW)
        optimizer.sync()
        step = optimizer.step_index - 1
        for parameter_set in (mesh.positions, mesh.colors):
            theta = parameter_set.values(context).ravel()
            signs = perturbation_signs(parameter_set.count, parameter_set.set_id, perturbation_seed(9, step))
            offset = np.float32(parameter_set.settings.epsilon) * np.float32(epsilon_schedule(step)) * signs
            copies = read_buffer(context, parameter_set.perturbed).reshape(2, -1)
            np.testing.assert_allclose(copies[0], theta + offset, rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(copies[1], theta - offset, rtol=1e-6, atol=1e-9)
            assert 0 < np.count_nonzero(signs > 0) < parameter_set.count


def test_groups_take_turns(context, make_optimizer):
    """Sets of different groups are perturbed on alternate steps, each stepped after its
    own turn with its own Adam count t (Settings.group, Optimizer docs)."""
    mesh, reference = scene(position_group=0, color_group=1)
    optimizer = make_optimizer(mesh, reference, (32, 32), seed=5, learning_rate_schedule=schedule)
    sets = (mesh.positions, mesh.colors)
    turn = {mesh.positions: 0, mesh.colors: 1}
    states, accumulated = [], []
    for _ in range(3):
        optimizer.step(VIEW)
        optimizer.sync()
        step = optimizer.step_index - 1
        states.append({s: snapshot(context, s) for s in sets})
        accumulated.append({s: accumulator_of(context, s, step % 2) for s in sets})
        for parameter_set in sets:
            copies = read_buffer(context, parameter_set.perturbed).reshape(2, -1)
            perturbed = step % 2 == turn[parameter_set]
            assert np.array_equal(copies[0], copies[1]) != perturbed, (parameter_set.name, step)
    optimizer.finish()
    states.append({s: snapshot(context, s) for s in sets})

    for step in (0, 1, 2):
        for parameter_set in sets:
            before, after = states[step][parameter_set], states[step + 1][parameter_set]
            name = f"{parameter_set.name}, update of step {step}"
            if step % 2 != turn[parameter_set]:
                for a, b in zip(before, after):
                    np.testing.assert_array_equal(a, b, err_msg=name)
                continue
            sums, counts = accumulated[step][parameter_set]
            signs = perturbation_signs(parameter_set.count, parameter_set.set_id,
                                       perturbation_seed(optimizer.seed, step))
            expected, _, _ = adam_reference(before, sums, counts, signs, parameter_set.settings,
                                         t=step // 2 + 1, scale=schedule(step), components=parameter_set.shape[1])
            assert_update(name, before, after, expected)
