"""The subdivision scenario's detailed reference (docs/SCENARIOS.md): a bumpy, coloured
torus of >= 100K triangles, procedural so every run (bench, tests) draws the same one.

Torus, axis +Z, major radius 1, tube radius 0.35, ``segments`` x ``sides`` quads split into
triangles (320 x 160: 102,400 triangles). The tube's radius carries BUMPS Gaussian bumps
(centre angles uniform, heights U(-1, 1) x BUMP_HEIGHT, widths U(0.5, 1) x BUMP_WIDTH
radians) plus RIDGES fine ridges around the axis (RIDGE_HEIGHT), from
numpy.random.default_rng(seed) (seed 2024) drawn in that order: detail a 500-triangle
cage cannot follow but its displacement can. Per-vertex linear colours: a warm/cool
gradient around the axis with dark spots on the bumps' peaks and light stripes along
the tube.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..source import Material, SourceMesh

MAJOR_RADIUS = 1.0
TUBE_RADIUS = 0.35
BUMPS = 60
BUMP_HEIGHT = 0.06
BUMP_WIDTH = 0.25
RIDGES = 24
RIDGE_HEIGHT = 0.012
SEED = 2024


def bumpy_torus(segments: int = 320, sides: int = 160, seed: int = SEED) -> SourceMesh:
    """The reference as a ``SourceMesh`` (2 x segments x sides triangles)."""
    rng = np.random.default_rng(seed)
    centre_theta = rng.uniform(0.0, 2.0 * np.pi, BUMPS)
    centre_phi = rng.uniform(0.0, 2.0 * np.pi, BUMPS)
    heights = rng.uniform(-1.0, 1.0, BUMPS) * BUMP_HEIGHT
    widths = rng.uniform(0.5, 1.0, BUMPS) * BUMP_WIDTH
    theta, phi = np.meshgrid(np.arange(segments) * 2.0 * np.pi / segments, np.arange(sides) * 2.0 * np.pi / sides,
                             indexing="ij")

    def wrapped(a):  # angle differences in (-pi, pi]
        return (a + np.pi) % (2.0 * np.pi) - np.pi

    distance2 = ((wrapped(theta[..., None] - centre_theta) * MAJOR_RADIUS) ** 2 +
                 (wrapped(phi[..., None] - centre_phi) * TUBE_RADIUS) ** 2)
    bump = np.exp(-distance2 / (2.0 * (widths * TUBE_RADIUS) ** 2))
    tube = TUBE_RADIUS + (bump * heights).sum(axis=-1) + RIDGE_HEIGHT * np.sin(RIDGES * theta)
    ring = MAJOR_RADIUS + tube * np.cos(phi)
    positions = np.stack([ring * np.cos(theta), ring * np.sin(theta), tube * np.sin(phi)], axis=-1).reshape(-1, 3)
    index = np.arange(segments * sides).reshape(segments, sides)
    a, b = index, np.roll(index, -1, axis=0)
    c, d = np.roll(a, -1, axis=1), np.roll(b, -1, axis=1)
    triangles = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    # Colours: gradient around the axis, dark spots at the bumps' peaks, stripes along the tube.
    warm, cool = np.array([0.80, 0.35, 0.12]), np.array([0.10, 0.35, 0.75])
    mix = 0.5 + 0.5 * np.sin(theta)[..., None]
    color = warm * mix + cool * (1.0 - mix)
    peaks = (bump * (np.abs(heights) / BUMP_HEIGHT)).max(axis=-1)
    color = color * (1.0 - 0.7 * np.clip(peaks - 0.5, 0.0, 0.5)[..., None] * 2.0)
    stripes = (np.sin(8.0 * phi) > 0.85)[..., None]
    color = np.where(stripes, 0.85, color).reshape(-1, 3)
    corners = positions[triangles]
    face = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(positions)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return SourceMesh(name="bumpy_torus", path=Path("bumpy_torus"), positions=positions.astype(np.float32),
                      normals=normals.astype(np.float32), uvs=np.zeros((len(positions), 2), np.float32),
                      triangles=triangles.astype(np.int32), material_index=np.zeros(len(triangles), np.int32),
                      materials=[Material("bumpy", np.ones(3, np.float32))], colors=color.astype(np.float32))
