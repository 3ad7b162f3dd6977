"""The kind contract: a kind written only in the tests (tests/discs.py, opaque discs as
instanced quads with a plane of its own and copies in a layout P does not know) is fitted
to a reference through the unchanged core, and its gradient estimate agrees with finite
differences (SPEC's check). Adding it touched no file of optimizer/ or shaders/."""

from __future__ import annotations

import numpy as np

from discs import Discs, disc_model
from optimizer import Settings
from optimizer.surface.mesh import ModelReference
from sge_testlib import cosine, relative_error
from test_gradient import finite_difference, sge_estimate

RADIUS = 0.22
TRUE_CENTRES = np.array([[-0.45, -0.4], [0.4, -0.45], [-0.4, 0.42], [0.45, 0.4], [0.0, 0.0]], np.float32)
TRUE_COLORS = np.array([[0.9, 0.2, 0.1], [0.1, 0.8, 0.3], [0.2, 0.3, 0.9], [0.9, 0.9, 0.2], [0.7, 0.2, 0.8]],
                       np.float32)


def reference():
    return ModelReference(disc_model(TRUE_CENTRES, TRUE_COLORS, RADIUS))


def test_discs_fit_their_reference_through_the_core(make_optimizer, identity_view):
    """Centres 0.08 off and grey discs: 400 steps (centres and colours in turns) take the
    mean pixel loss down by at least 5x and each centre four times nearer its truth."""
    rng = np.random.default_rng(7)
    start = TRUE_CENTRES + rng.uniform(-0.08, 0.08, TRUE_CENTRES.shape).astype(np.float32)
    discs = Discs(start, np.full((5, 3), 0.5, np.float32), RADIUS, centre_settings=Settings(0.01, 0.004),
                  color_settings=Settings(0.03, 0.02, (0.0, 1.0)))
    optimizer = make_optimizer(discs, reference(), (48, 48), seed=2, supersampling=2)
    optimizer.steps([identity_view] * 400)
    optimizer.verify_shaders()
    losses = optimizer.losses()
    first, last = losses[:20].mean(), losses[-20:].mean()
    assert last < first / 5.0, (first, last)  # measured: 0.0757 -> 0.0068, 11x
    context = optimizer.context
    centres = discs.centres.values(context)
    before = np.linalg.norm(start - TRUE_CENTRES, axis=1)
    after = np.linalg.norm(centres - TRUE_CENTRES, axis=1)
    assert np.all(after < before / 4.0), (before, after)  # measured: 0.05-0.09 -> 0.0005-0.006
    np.testing.assert_allclose(discs.colors.values(context), TRUE_COLORS, atol=0.1)


def test_disc_colour_gradient_matches_finite_difference(context, make_optimizer, identity_view):
    """Colours with the centres frozen at the truth: the summed L2 loss is quadratic in
    them, so a central difference is exact (h = eps = 0.02); K = 300 estimates."""
    rng = np.random.default_rng(3)
    colors = rng.uniform(0.2, 0.8, (5, 3)).astype(np.float32)
    discs = Discs(TRUE_CENTRES, colors, RADIUS, color_settings=Settings(0.02, 0.0))
    optimizer = make_optimizer(discs, reference(), (32, 32), seed=5)
    estimate = sge_estimate(context, optimizer, discs.colors, identity_view, steps=300)
    truth = finite_difference(context, optimizer, discs.colors, identity_view, h=0.02)
    assert np.linalg.norm(truth) > 5.0  # a real gradient, not noise
    assert cosine(estimate, truth) >= 0.95
    assert relative_error(estimate, truth) <= 0.3
