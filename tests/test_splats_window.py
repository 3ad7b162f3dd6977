"""Splats in a real Panda3D window (GLX, under Xvfb): ``sge view FILE.ply`` draws a .ply
with the optimizer's splat renderer, sorted for the camera each frame. Skipped where no X
server can be had."""

from __future__ import annotations

import numpy as np
from PIL import Image

from optimizer.splats.kind import SH_C0
from optimizer.splats.ply import write_ply
from test_window import run_in_x


def test_view_shows_the_splats_of_a_ply(tmp_path):
    """Two splats, a red one and a larger green one: both show, in their colours (the
    window is framed on them, the quads sorted and blended by the optimizer's shaders)."""
    ply = tmp_path / "two.ply"
    write_ply(ply, {
        "means": np.array([[0.0, 0.0, 0.0], [0.6, 0.6, -0.4]], np.float32),
        "log_scales": np.log(np.array([[0.15, 0.15, 0.15], [0.3, 0.3, 0.3]], np.float32)),
        "rotations": np.array([[1, 0, 0, 0], [1, 0, 0, 0]], np.float32),
        "opacities": np.array([[6.0], [6.0]], np.float32),
        "colors": ((np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]) - 0.5) / SH_C0).astype(np.float32),
    })
    shot = tmp_path / "shot.png"
    result = run_in_x(["-m", "optimizer", "view", str(ply), "--frames", "5", "--screenshot", str(shot)], tmp_path)
    assert result.returncode == 0, result.stderr
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    red = (image[..., 0] > 150) & (image[..., 1] < 60)
    green = (image[..., 1] > 150) & (image[..., 0] < 60)
    assert red.sum() > 500 and green.sum() > 500, (red.sum(), green.sum())
