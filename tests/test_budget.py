"""The in-game component's frame budget, as logic (no wall time): given what the last frame
measured, how many SGE steps the next frame runs."""

from __future__ import annotations

import math

import pytest

from game.component import MAX_STEPS_PER_FRAME, TARGET_FPS, steps_per_frame


@pytest.mark.parametrize("frame_ms, steps, budget_ms, expected", [
    (10.0, 1, 33.3, 3),     # 10 ms a step: three fit a 33 ms frame
    (10.0, 5, 33.3, 16),    # five steps took 10 ms: 2 ms each, 16 fit
    (2.0, 1, 16.0, 8),
    (40.0, 4, 33.3, 3),     # over budget: fewer steps next frame
    (100.0, 1, 33.3, 1),    # one step costs more than the budget: still one (never zero)
    (1000.0, 10, 5.0, 1),
])
def test_steps_follow_the_budget_and_never_drop_to_zero(frame_ms, steps, budget_ms, expected):
    assert steps_per_frame(frame_ms, steps, budget_ms) == expected


def test_more_budget_never_means_fewer_steps():
    counts = [steps_per_frame(12.0, 3, budget) for budget in (1, 4, 8, 16, 33, 66, 200)]
    assert counts == sorted(counts) and counts[0] == 1 and counts[-1] == 50


def test_the_count_is_capped_and_survives_odd_measurements():
    assert steps_per_frame(0.01, 1, 1000.0) == MAX_STEPS_PER_FRAME
    for frame_ms, steps in ((math.nan, 3), (0.0, 3), (-5.0, 2), (math.inf, 1), (10.0, 0)):
        assert steps_per_frame(frame_ms, steps, 33.3) == 1


def test_the_default_budget_holds_30_fps_when_a_step_is_cheap():
    # A GPU-like case: the app's frame with one step took 5 ms; fill up to 1000/30 ms.
    budget = 1000.0 / TARGET_FPS
    steps = steps_per_frame(5.0, 1, budget)
    assert steps == 6 and steps * 5.0 <= budget
    # The CPU case: one step takes 110 ms; the app runs slower but keeps stepping.
    assert steps_per_frame(110.0, 1, budget) == 1
