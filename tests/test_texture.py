"""Texture maps as parameters: G's texel contributors, the gradient they give, and a fit."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import Mesh, Settings
from optimizer.surface.mesh import geom_node, grid
from optimizer.surface.texture import TextureSet, float_texture
from sge_testlib import accumulator_of, cosine, relative_error
from test_gradient import finite_difference, one_step_without_coverage_flips, sge_estimate

SIZE = 4  # texels per side: at 32 px over the quad, each texel is magnified ~6x


def quad_scene(albedo_settings, seed=0, bilinear_weights=True):
    """A quad over most of the image, uvs [0, 1]^2, white vertex colors, a 4x4 albedo to
    learn (start: gray) against a random reference albedo."""
    rng = np.random.default_rng(seed)
    positions, triangles = grid(2, -0.8, 0.8)
    uvs = (positions[:, :2] + 0.8) / 1.6
    truth = rng.uniform(0.0, 1.0, (SIZE, SIZE, 3)).astype(np.float32)
    albedo = TextureSet("albedo", np.full((SIZE, SIZE, 3), 0.5, np.float32), albedo_settings,
                        bilinear_weights=bilinear_weights)
    mesh = Mesh(positions, triangles, uvs=uvs, albedo=albedo)
    reference = geom_node("reference", positions, triangles, uvs=uvs)
    return mesh, reference, float_texture("truth", truth), truth, uvs


def bilinear_texels(u, v):
    """The 4 texels (repeat wrap) and weights a bilinear fetch at (u, v) reads."""
    tx, ty = u * SIZE - 0.5, v * SIZE - 0.5
    x0, y0 = int(np.floor(tx)), int(np.floor(ty))
    fx, fy = tx - x0, ty - y0
    texels = [((y0 + dy) % SIZE) * SIZE + (x0 + dx) % SIZE for dy in (0, 1) for dx in (0, 1)]
    weights = [(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy]
    return texels, weights


def test_g_names_exactly_the_4_bilinear_texels(context, make_optimizer, identity_view):
    mesh, reference, truth_texture, _, _ = quad_scene(Settings(0.05, 0.0))
    optimizer = make_optimizer(mesh, reference, (32, 32), seed=1, reference_albedo=truth_texture)
    images, delta, ids = one_step_without_coverage_flips(context, optimizer, identity_view)
    expected = np.zeros((2, SIZE * SIZE))
    named = np.zeros(SIZE * SIZE, bool)
    for row, col in np.argwhere(ids >= 0):
        u, v = images["plus", "uv"][row, col, :2]
        texels, weights = bilinear_texels(u, v)
        for texel, weight in zip(texels, weights):
            expected[:, texel] += (weight * delta[row, col], weight)
            named[texel] |= weight > 0
    sums, counts = accumulator_of(context, mesh.albedo, 0)
    assert named.all()  # the scene reaches every texel
    np.testing.assert_allclose(counts, expected[1], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(sums, expected[0], rtol=1e-4, atol=1e-4)


def test_texel_gradient_matches_finite_difference(context, make_optimizer, identity_view):
    """The summed L2 loss is quadratic in the texels (bilinear sampling is linear), so a
    central difference is exact (h = eps = 0.02). Uniform contributor weights: the
    un-normalised accumulation is then SPEC.md's estimate of the summed loss's gradient.
    Measured over scene/run seeds 0-5: cosine 0.990-0.995, relative error 0.11-0.14 at
    K = 300."""
    mesh, reference, truth_texture, _, _ = quad_scene(Settings(0.02, 0.0), bilinear_weights=False)
    optimizer = make_optimizer(mesh, reference, (32, 32), seed=4, reference_albedo=truth_texture)
    estimate = sge_estimate(context, optimizer, mesh.albedo, identity_view, steps=300)
    truth = finite_difference(context, optimizer, mesh.albedo, identity_view, h=0.02)
    assert np.linalg.norm(truth) > 10.0
    assert cosine(estimate, truth) >= 0.95
    assert relative_error(estimate, truth) <= 0.3


def test_albedo_fit_recovers_the_texture(context, make_optimizer, identity_view):
    mesh, reference, truth_texture, truth, _ = quad_scene(Settings(0.02, 0.02, (0.0, 1.0)))
    optimizer = make_optimizer(mesh, reference, (32, 32), seed=5, reference_albedo=truth_texture)
    before = np.abs(mesh.albedo.texture_values(context) - truth).mean()
    for _ in range(300):
        optimizer.step(identity_view)
    optimizer.finish()
    after = np.abs(mesh.albedo.texture_values(context) - truth).mean()
    losses = optimizer.losses()
    assert losses[-10:].mean() < 0.05 * losses[:10].mean()
    assert after < 0.2 * before, (before, after)


def test_saved_float_texture_loads_back_bit_identical_and_exports_srgb_png(context, make_optimizer, identity_view,
                                                                         tmp_path):
    mesh, reference, truth_texture, _, _ = quad_scene(Settings(0.02, 0.05, (0.0, 1.0)))
    optimizer = make_optimizer(mesh, reference, (32, 32), seed=6, reference_albedo=truth_texture)
    for _ in range(20):
        optimizer.step(identity_view)
    optimizer.finish()
    values = mesh.albedo.texture_values(context)
    assert len(np.unique(values)) > 10  # learned, not the flat start

    mesh.albedo.save_float(context, tmp_path / "albedo.npy")
    fresh = TextureSet("albedo", np.zeros_like(values))
    fresh.load_float(tmp_path / "albedo.npy")
    assert fresh.texture_values(context).tobytes() == values.tobytes()

    mesh.albedo.export_png(context, tmp_path / "albedo.png")
    from PIL import Image
    png = np.asarray(Image.open(tmp_path / "albedo.png"))
    c = np.clip(values.astype(np.float64), 0.0, 1.0)
    srgb = np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)
    assert png.dtype == np.uint8 and png.shape == (SIZE, SIZE, 3)
    np.testing.assert_array_equal(png[::-1], np.round(srgb * 255.0).astype(np.uint8))


@pytest.mark.parametrize("content, message", [
    (b"not a numpy file", "cannot read texture"),
    (None, "expected float32"),
])
def test_loading_a_bad_float_texture_is_a_clear_error(tmp_path, content, message):
    from optimizer import SgeError
    path = tmp_path / "albedo.npy"
    if content is None:
        np.save(path, np.zeros((2, 2, 3), np.float32))
    else:
        path.write_bytes(content)
    with pytest.raises(SgeError, match=message):
        TextureSet("albedo", np.zeros((SIZE, SIZE, 3), np.float32)).load_float(path)


def test_p_covers_sets_larger_than_one_row_of_workgroups(context, make_optimizer, identity_view):
    """2100 x 2100 texels need 68,907 workgroups of 64: more than the 65,535 one dispatch
    dimension may hold, so P runs a 2D grid; every texel, the last included, is written."""
    from optimizer.gpu import read_buffer, read_texture
    from optimizer.parameters import dispatch_grid
    size = 2100
    assert dispatch_grid(size * size)[1] == 2
    albedo = TextureSet("albedo", np.full((size, size, 1), 0.5, np.float32), Settings(0.01, 0.0))
    positions, triangles = grid(2, -0.8, 0.8)
    mesh = Mesh(positions, triangles, uvs=(positions[:, :2] + 0.8) / 1.6, albedo=albedo)
    optimizer = make_optimizer(mesh, geom_node("reference", positions, triangles), (8, 8))
    optimizer.step(identity_view)
    optimizer.sync()
    assert read_buffer(context, optimizer.loss_history)[6] == 1  # P ran and stamped step 0
    plus = read_texture(context, albedo.plus)
    assert plus.shape == (size, size, 4)
    np.testing.assert_allclose(np.abs(plus[..., 0] - 0.5), 0.01, rtol=1e-4)  # every texel perturbed


def lit_quad_gradient_check(context, make_optimizer, seed, learned, maps):
    """SGE's un-normalised estimate (uniform weights, K = 300, eps = 0.02) against a central
    difference (h = 0.02) for the 4x4 map ``learned`` of a lit, gray quad seen in
    perspective; ``maps`` gives each map's (start, truth) values. Returns (cosine,
    relative error, |finite-difference gradient|)."""
    from optimizer.view import perspective, translation
    positions, triangles = grid(2, -1.0, 1.0)
    frame = {"uvs": (positions[:, :2] + 1.0) / 2.0,
             "normals": np.tile([0.0, 0.0, 1.0], (len(positions), 1)).astype(np.float32),
             "tangents": np.tile([1.0, 0.0, 0.0], (len(positions), 1)).astype(np.float32),
             "binormals": np.tile([0.0, -1.0, 0.0], (len(positions), 1)).astype(np.float32)}  # along -v
    gray = np.full((SIZE, SIZE, 3), 0.5, np.float32)
    sets = {name: TextureSet(name, start, Settings(0.02, 0.0) if name == learned else None, bilinear_weights=False)
            for name, (start, _) in maps.items()}
    mesh = Mesh(positions, triangles, albedo=TextureSet("albedo", gray), **frame, **sets)
    references = {f"reference_{name}": float_texture(f"true-{name}", truth) for name, (_, truth) in maps.items()}
    optimizer = make_optimizer(mesh, geom_node("reference", positions, triangles, **frame), (32, 32), seed=seed,
                               reference_albedo=float_texture("gray", gray), **references)
    optimizer.view.set_light([0.3, 0.2, 1.0], 0.2)
    view = perspective(0.4) @ translation(0, 0, -2.2)
    estimate = sge_estimate(context, optimizer, sets[learned], view, steps=300)
    truth = finite_difference(context, optimizer, sets[learned], view, h=0.02)
    return cosine(estimate, truth), relative_error(estimate, truth), float(np.linalg.norm(truth))


def test_roughness_gradient_matches_finite_difference(context, make_optimizer):
    """A specular highlight (Blinn-Phong lobe driven by a roughness map): the loss is
    smooth in the roughness texels. Measured with seeds 0-3: cosine 0.993-0.999,
    relative error 0.06-0.13, |gradient| 19-155."""
    rng = np.random.default_rng(7)
    maps = {"roughness": (rng.uniform(0.35, 0.65, (SIZE, SIZE, 1)).astype(np.float32),
                          rng.uniform(0.3, 0.7, (SIZE, SIZE, 1)).astype(np.float32))}
    cos, error, norm = lit_quad_gradient_check(context, make_optimizer, 8, "roughness", maps)
    assert norm > 5.0 and cos >= 0.95 and error <= 0.3, (cos, error, norm)


def tangent_space_normals(rng, tilt: float) -> np.ndarray:
    """Random unit normals within about ``tilt`` of +z, encoded 0.5 n + 0.5."""
    n = np.concatenate([rng.uniform(-tilt, tilt, (SIZE, SIZE, 2)), np.ones((SIZE, SIZE, 1))], axis=-1)
    return (0.5 * n / np.linalg.norm(n, axis=-1, keepdims=True) + 0.5).astype(np.float32)


def test_normal_map_gradient_matches_finite_difference(context, make_optimizer):
    """A tangent-space normal map bending Lambert shading (with per-vertex tangents and
    binormals, reference drawn from Panda3D's own tangent/binormal columns): smooth in
    the normal texels. Measured with seeds 0-3: cosine 0.987-0.990, relative error
    0.15-0.18, |gradient| 8.4-9.7."""
    rng = np.random.default_rng(9)
    maps = {"normal_map": (tangent_space_normals(rng, 0.3), tangent_space_normals(rng, 0.5))}
    cos, error, norm = lit_quad_gradient_check(context, make_optimizer, 10, "normal_map", maps)
    assert norm > 5.0 and cos >= 0.95 and error <= 0.3, (cos, error, norm)


def test_mip_levels_follow_what_p_writes(context, make_optimizer, identity_view):
    """A mipmapped texture set: after each step every mip level of theta+ and theta- is
    the 2x2 box average of the level above, of the values P wrote this step."""
    rng = np.random.default_rng(11)
    positions, triangles = grid(2, -0.8, 0.8)
    albedo = TextureSet("albedo", rng.uniform(0.2, 0.8, (16, 8, 3)).astype(np.float32), Settings(0.05, 0.01),
                        mipmaps=True)
    mesh = Mesh(positions, triangles, uvs=(positions[:, :2] + 0.8) / 1.6, albedo=albedo)
    optimizer = make_optimizer(mesh, geom_node("reference", positions, triangles), (16, 16))
    for _ in range(3):
        optimizer.step(identity_view)
    optimizer.sync()
    for texture in (albedo.plus, albedo.minus):
        context.engine.extractTextureData(texture, context.gsg)
        levels = [np.frombuffer(bytes(texture.getRamMipmapImage(n)), np.float32).reshape(
                  max(1, 16 >> n), max(1, 8 >> n), 4) for n in range(texture.getNumRamMipmapImages())]
        texture.clearRamImage()
        assert len(levels) == 5  # 16x8 down to 1x1
        assert not np.allclose(levels[0][..., 2], albedo.texture_values(context)[..., 0])  # perturbed, not theta
        for upper, lower in zip(levels, levels[1:]):
            h, w = lower.shape[:2]
            rows = np.minimum(2 * np.arange(h)[:, None] + np.array([0, 1]), upper.shape[0] - 1)  # edge clamp
            cols = np.minimum(2 * np.arange(w)[:, None] + np.array([0, 1]), upper.shape[1] - 1)
            expected = upper[rows[:, :, None, None], cols[None, None, :, :]].mean(axis=(1, 3))
            np.testing.assert_allclose(lower, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mip_aware", [False, True])
def test_minified_samples_name_their_mip_footprint(context, make_optimizer, identity_view, mip_aware):
    """A 64x64 texture over a 16x16 image: each pixel covers 4x4 texels, so a trilinear
    sampler reads level 2. Mip-aware contributors spread each sample's 4 level-2 texels
    back onto their 4x4 level-0 blocks: every texel is named and each pixel still
    weighs 1 in all. Plain bilinear ones name 4 level-0 texels per pixel: a quarter."""
    positions, triangles = grid(2, -1.0, 1.0)
    albedo = TextureSet("albedo", np.full((64, 64, 3), 0.5, np.float32), Settings(0.05, 0.0), mipmaps=True,
                        mip_aware=mip_aware)
    mesh = Mesh(positions, triangles, uvs=(positions[:, :2] + 1.0) / 2.0, albedo=albedo)
    optimizer = make_optimizer(mesh, geom_node("reference", positions, triangles), (16, 16))
    optimizer.step(identity_view)
    optimizer.sync()
    _, weights = accumulator_of(context, albedo, 0)
    named = np.count_nonzero(weights > 0)
    if mip_aware:
        assert named == 64 * 64
        assert weights.sum() == pytest.approx(16 * 16, rel=1e-4)
    else:
        assert named <= 16 * 16 * 4 and named < 64 * 64 / 2
