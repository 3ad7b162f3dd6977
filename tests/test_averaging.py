"""Iterate averaging (Settings.average_eta, perturb.comp's THETA_AVERAGE): P keeps
theta_average += (eta + 1) / (t + eta) (theta - theta_average) after each of the set's
updates t, without changing the steps themselves; the cube outputs the average and
reports err and stepping time at every report step."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import Settings
from optimizer.bench import error_at_seconds
from optimizer.errors import SgeError
from optimizer.scenarios.cube import CubeRun, CubeScenario, CubeSettings, dense_report_steps


def _start(scenario, seed):
    positions, colors = scenario.initial_state(seed)
    scenario.mesh.positions.load(positions)
    scenario.mesh.colors.load(colors)
    scenario.optimizer.reset(seed)
    return scenario.views(seed)


def test_average_follows_the_iterates_and_leaves_the_steps_alone(context):
    """The GPU's average equals the float64 polynomial-decay average of the iterates
    read after every step, and theta is bit-identical to a run without averaging."""
    eta = 2.0
    averaged = CubeScenario(context, 16, settings=CubeSettings(average_eta=eta))
    plain = CubeScenario(context, 16, settings=CubeSettings(average_eta=None))
    try:
        views = _start(averaged, 0)
        expected = None
        for t in range(1, 31):
            averaged.optimizer.step(next(views))
            averaged.optimizer.finish()  # applies step t's update: the set's t-th
            theta = averaged.mesh.positions.values(context).astype(np.float64)
            expected = theta if expected is None else expected + (eta + 1) / (t + eta) * (theta - expected)
        got = averaged.mesh.positions.output_values(context)
        assert not np.array_equal(got, averaged.mesh.positions.values(context))  # it is not theta
        np.testing.assert_allclose(got, expected, atol=2e-6)
        theta = averaged.mesh.positions.values(context)
        averaged.optimizer.set_active(False)  # its passes would run again in plain's frames

        views = _start(plain, 0)
        for _ in range(30):
            plain.optimizer.step(next(views))
            plain.optimizer.finish()
        assert np.array_equal(plain.mesh.positions.values(context), theta)
        assert np.array_equal(plain.mesh.positions.output_values(context), plain.mesh.positions.values(context))
    finally:
        averaged.optimizer.release()
        plain.optimizer.release()


def test_cube_run_reports_every_step_it_reaches(context):
    scenario = CubeScenario(context, 16)
    try:
        run = scenario.run(0, 150, report_steps=(100, 300))
    finally:
        scenario.optimizer.release()
    assert sorted(run.errors) == [100, 150]  # 300 not reached; the last step always
    assert sorted(run.iterate_errors) == [100, 150] and sorted(run.seconds_at) == [100, 150]
    assert 0 < run.seconds_at[100] < run.seconds_at[150] == run.seconds


def test_error_at_seconds_reads_the_last_report_step_by_then():
    runs = [CubeRun(0, 300, {100: 0.3, 200: 0.2, 300: 0.1}, 3.0, np.zeros(1), np.zeros(1),
                    {}, {100: 0.5, 200: 1.5, 300: 3.0}),
            CubeRun(1, 300, {100: 0.5, 200: 0.4, 300: 0.3}, 3.0, np.zeros(1), np.zeros(1),
                    {}, {100: 0.9, 200: 2.5, 300: 3.0})]
    assert error_at_seconds(runs, (0.1, 1.0, 2.0, 4.0)) == {"0.1": None, "1": 0.4, "2": pytest.approx(0.35), "4": None}
    assert dense_report_steps(1000)[:3] == (100, 120, 144) and dense_report_steps(1000)[-1] == 1000


def test_bad_average_eta_is_one_clear_error():
    with pytest.raises(SgeError, match="average_eta"):
        Settings(0.01, 0.01, average_eta=-1.0)


def test_bench_cube_reports_error_against_time(tmp_path):
    import json, os, subprocess, sys
    from pathlib import Path
    import optimizer
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(optimizer.__file__).resolve().parent.parent),
                                                    env.get("PYTHONPATH")) if p)
    result = subprocess.run([sys.executable, "-m", "optimizer", "bench", "cube", "--res", "16", "--steps", "2000",
                             "--seeds", "1", "--report-steps", "50,100,150", "--until-seconds", "1e-9", "--json"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # Stops at its first report step: 50 steps, reported with its stepping time.
    assert report["steps_per_seed"] == [50] and list(report["err"]) == ["50"]
    assert report["wall_s_at"]["50"] > 0 and set(report["err_at_seconds"]) == {"0.1", "0.3", "1", "2", "4", "10"}
    assert report["err_iterate"]["50"] > 0 and report["average_eta"] == CubeSettings().average_eta


def test_bad_report_steps_is_one_clear_error():
    from click.testing import CliRunner
    from optimizer.cli import main
    result = CliRunner().invoke(main, ["bench", "cube", "--report-steps", "100,x"])
    assert result.exit_code != 0 and "--report-steps" in result.output and "Traceback" not in result.output
