"""Shared fixtures: one headless GL context per test session (Panda3D's GraphicsEngine
is global), and a factory for optimizers that releases their offscreen buffer."""

from __future__ import annotations

import numpy as np
import pytest

from panda3d.core import NodePath

from optimizer import GpuContext, Optimizer
from optimizer.surface.mesh import ModelReference


@pytest.fixture(scope="session")
def context() -> GpuContext:
    return GpuContext.headless()


@pytest.fixture
def make_optimizer(context):
    """``make_optimizer(asset, reference, resolution, **kwargs)`` -> Optimizer, released
    (its offscreen buffer removed) when the test ends. A plain Panda3D model as the
    reference is drawn with the asset's shading (``ModelReference``, lit as the asset is),
    with ``reference_albedo`` / ``reference_roughness`` / ``reference_normal_map``."""
    made: list[Optimizer] = []

    def make(asset, reference, resolution, **kwargs) -> Optimizer:
        if isinstance(reference, NodePath):
            shading = {key: kwargs.pop(f"reference_{key}", None) for key in ("albedo", "roughness", "normal_map")}
            reference = ModelReference(reference, lit=asset.lit, **shading)
        optimizer = Optimizer(context, asset, reference, resolution, **kwargs)
        made.append(optimizer)
        return optimizer

    yield make
    for optimizer in made:
        optimizer.release()


@pytest.fixture
def identity_view() -> np.ndarray:
    """World xy in [-1, 1] maps straight to clip space (w = 1, an affine projection)."""
    return np.eye(4)


# The LOD chain the .glb and chain tests share (tests/test_glb.py, tests/test_chain.py):
# Panda3D's panda, two levels, --steps 0 (decimated and baked), small maps and renders.
PANDA_CHAIN = ["--triangles", "1000,300", "--texture-size", "128", "--res", "64", "--steps", "0"]


@pytest.fixture(scope="session")
def panda_chain(tmp_path_factory):
    """The output directory of ``sge optimize models/panda`` with PANDA_CHAIN."""
    from test_cli import run_sge

    folder = tmp_path_factory.mktemp("panda-chain")
    out = folder / "panda-lods"
    result = run_sge(["optimize", "models/panda", *PANDA_CHAIN, "--out", str(out)], folder, timeout=300)
    assert result.returncode == 0, result.stderr
    return out
