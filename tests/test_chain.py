"""LOD chains (issue 18): ``--triangles 1000,300`` writes every level into its own
subfolder (the first exactly as ``--triangles N`` alone writes it, the next decimated
from it), and NAME.lods.bam, a LODNode
holding the levels in order with increasing switch distances from the stated rule; bad
chains are one usage line (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from panda3d.core import LODNode

from conftest import PANDA_CHAIN
from optimizer.lod.chain import SWITCH_PSNR, good_size, switch_distance, switch_sizes, view_sizes
from optimizer.cli import main
from test_cli import run_sge
from test_export import load, triangle_count

BUDGETS = [int(n) for n in PANDA_CHAIN[PANDA_CHAIN.index("--triangles") + 1].split(",")]
LEVEL_FILES = {"panda.bam", "panda.egg", "panda.obj", "panda.mtl", "panda.glb", "panda_albedo.png",
               "panda_normal.png", "report.png", "metrics.json"}


def test_each_level_is_written_in_its_own_subfolder(panda_chain):
    assert {p.name for p in panda_chain.iterdir()} == {"panda.lods.bam", "report.png", "metrics.json", ".sge-output",
                                                        "lod0", "lod1"}
    metrics = json.loads((panda_chain / "metrics.json").read_text())
    assert [level["folder"] for level in metrics["levels"]] == ["lod0", "lod1"]
    assert metrics["starts_from"] == "previous level" and metrics["switch_rule"]["psnr"] == SWITCH_PSNR
    for level, budget in zip(metrics["levels"], BUDGETS):
        folder = panda_chain / level["folder"]
        assert {p.name for p in folder.iterdir()} == LEVEL_FILES
        own = json.loads((folder / "metrics.json").read_text())
        assert own["triangles_requested"] == budget and own["triangles"] == level["triangles"] <= budget


def test_the_lodnode_holds_the_levels_in_order_with_increasing_switch_distances(panda_chain):
    metrics = json.loads((panda_chain / "metrics.json").read_text())
    model = load(panda_chain / "panda.lods.bam")
    [switch_path] = model.findAllMatches("**/+LODNode")
    switch = switch_path.node()
    assert isinstance(switch, LODNode) and switch.getNumSwitches() == switch.getNumChildren() == len(BUDGETS)
    counts = [triangle_count(switch_path.getChild(k)) for k in range(switch.getNumChildren())]
    assert counts == [level["triangles"] for level in metrics["levels"]]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == len(counts)
    assert [switch_path.getChild(k).getName() for k in range(len(BUDGETS))] == ["lod0", "lod1"]
    near = [switch.getOut(k) for k in range(len(BUDGETS))]  # each level is shown from out (near) to in (far)
    far = [switch.getIn(k) for k in range(len(BUDGETS))]
    assert near[0] == 0.0 and all(a < b for a, b in zip(near, near[1:])), near
    assert far[:-1] == pytest.approx(near[1:], rel=1e-6)  # no gap, no overlap
    assert near == pytest.approx([level["switch_distance"] for level in metrics["levels"]], rel=1e-6)
    np.testing.assert_allclose(list(switch.getCenter()), metrics["center"], rtol=1e-5)
    # The rule: level 1 is shown from the distance of its switch size, and it reaches
    # SWITCH_PSNR there and at every smaller size.
    level = metrics["levels"][1]
    assert near[1] == pytest.approx(switch_distance(level["switch_size"], metrics["radius"]), rel=1e-6)
    if level["meets_switch_psnr"]:
        assert all(value >= SWITCH_PSNR for size, value in level["psnr_by_size"].items()
                   if int(size) <= level["switch_size"])
    # Textures travel inside the .lods.bam, as in each level's .bam.
    for texture in model.findAllTextures():
        assert texture.hasRamImage()


def test_the_first_level_is_the_single_job_and_the_next_starts_from_it(panda_chain, tmp_path):
    """The first level equals sge optimize with its budget alone, file for file; the
    second is decimated from the first (optimizer.lod.chain says why), so it differs from
    the single job of its budget."""
    metrics = json.loads((panda_chain / "metrics.json").read_text())
    assert [level["decimated_from"] for level in metrics["levels"]] == ["source", "lod0"]
    for level, budget in enumerate(BUDGETS):
        options = list(PANDA_CHAIN)
        options[options.index("--triangles") + 1] = str(budget)
        alone = tmp_path / f"alone-{budget}"
        result = run_sge(["optimize", "models/panda", *options, "--out", str(alone)], tmp_path, timeout=120)
        assert result.returncode == 0, result.stderr
        same = [(alone / name).read_bytes() == (panda_chain / f"lod{level}" / name).read_bytes()
                for name in ("panda.obj", "panda_albedo.png", "panda_normal.png", "panda.glb")]
        assert same == ([True] * 4 if level == 0 else [False] * 4), (level, same)


@pytest.mark.parametrize("value, says", [
    ("100,abc", "'abc' in '100,abc' is not a whole number"),
    ("100,200", "must decrease"),
    ("300,300", "must decrease"),
    ("100,0", "must be 1 or more"),
    ("", "is not a whole number"),
])
def test_a_bad_chain_is_one_usage_line_and_exit_2(value, says, tmp_path):
    result = CliRunner().invoke(main, ["optimize", "models/panda", "--triangles", value, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--triangles" in errors[0] and says in errors[0], result.output
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_a_chain_with_checkpoints_is_refused_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["optimize", "models/panda", "--triangles", "400,100", "--checkpoint-every", "5",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "not a chain" in result.output, result.output


def test_the_switch_rule_takes_the_nearest_size_from_which_every_farther_one_passes():
    sizes = view_sizes(64)
    assert sizes == [64, 45, 32, 23, 16, 11, 8, 6, 4]
    # Passing at 32 but not at 23: only from 16 down does it stay at or above the line.
    psnrs = np.array([25, 28, 31, 29, 30, 33, 35, 36, 40], float)
    assert good_size(sizes, psnrs) == (16, True)
    assert good_size(sizes, np.full(len(sizes), 10.0)) == (4, False)
    # A coarser level good as near as a finer one still takes over farther away.
    assert switch_sizes(sizes, [16, 23, 16]) == [16, 11, 8]
    assert switch_distance(8, 2.0) == pytest.approx(2 * switch_distance(16, 2.0))
