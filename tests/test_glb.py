"""The LOD as glTF 2.0 (NAME.glb, issue 18): glTF's frame and conventions, checked on a
written cube; Khronos' glTF-Validator finds no error in a real LOD's .glb; panda3d-gltf
loads it back with the LOD's triangles in the .bam's place; and Panda3D's auto-shader
draws it as it draws the .bam (tests/glb_script.py, under Xvfb).

The validator is the npm package gltf-validator, run by node (tests/gltf_validate.js)
from .node/ (git-ignored), where .ci/run installs it; this test installs it there too
when node and npm are here and it is not. Without node or npm it skips, saying so."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pygltflib
import pytest
from panda3d.core import Filename, NodePath
from PIL import Image

from optimizer.lod.export import write_lod
from test_export import cube_lod, triangle_count
from test_window import run_in_x

ROOT = Path(__file__).resolve().parent.parent
VALIDATOR_PREFIX = ROOT / ".node"
VALIDATOR = VALIDATOR_PREFIX / "node_modules" / "gltf-validator"
GLTF_VALIDATOR = "gltf-validator@2.0.0-dev.3.10"  # .ci/run installs the same
LEVELS = ("lod0", "lod1")


def accessor(document: pygltflib.GLTF2, index: int) -> np.ndarray:
    """An accessor's values as an (N, k) array (float32 or the index type)."""
    item = document.accessors[index]
    view = document.bufferViews[item.bufferView]
    dtype = {pygltflib.FLOAT: np.float32, pygltflib.UNSIGNED_SHORT: np.uint16,
             pygltflib.UNSIGNED_INT: np.uint32}[item.componentType]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[item.type]
    start = view.byteOffset + (item.byteOffset or 0)
    data = document.binary_blob()[start:start + item.count * width * np.dtype(dtype).itemsize]
    return np.frombuffer(data, dtype).reshape(item.count, width)


def image(document: pygltflib.GLTF2, index: int) -> np.ndarray:
    view = document.bufferViews[document.images[index].bufferView]
    return np.asarray(Image.open(io.BytesIO(document.binary_blob()[view.byteOffset:view.byteOffset + view.byteLength])))


def test_the_glb_is_the_lod_in_gltfs_frame_and_conventions(tmp_path):
    lod = cube_lod()
    mirrored = np.arange(len(lod["positions"])) % 5 == 0  # charts mirrored in v: the handedness flips
    lod["binormals"][mirrored] *= -1
    write_lod(tmp_path, **lod)
    document = pygltflib.GLTF2.load_binary(str(tmp_path / "lod.glb"))
    [primitive] = document.meshes[0].primitives
    attributes = primitive.attributes
    # Panda3D's Z-up (x, y, z) is glTF's Y-up (x, z, -y): a rotation, same units.
    x, y, z = lod["positions"].T
    np.testing.assert_allclose(accessor(document, attributes.POSITION), np.stack([x, z, -y], 1), atol=1e-6)
    nx, ny, nz = lod["normals"].T
    np.testing.assert_allclose(accessor(document, attributes.NORMAL), np.stack([nx, nz, -ny], 1), atol=1e-6)
    tangents = accessor(document, attributes.TANGENT)
    tx, ty, tz = lod["tangents"].T
    np.testing.assert_allclose(tangents[:, :3], np.stack([tx, tz, -ty], 1), atol=1e-6)
    # glTF's bitangent, cross(normal, tangent) * w, runs along +v, the map's green; ours
    # (Panda3D's binormal column) along -v.
    bitangents = np.cross(accessor(document, attributes.NORMAL), tangents[:, :3]) * tangents[:, 3:]
    bx, by, bz = -lod["binormals"].T
    np.testing.assert_allclose(bitangents, np.stack([bx, bz, -by], 1), atol=1e-6)
    assert set(tangents[:, 3]) == {-1.0, 1.0} and np.all((tangents[:, 3] < 0) == mirrored)
    # glTF's UV origin is the image's top-left.
    uvs = accessor(document, attributes.TEXCOORD_0)
    np.testing.assert_allclose(uvs, np.stack([lod["uvs"][:, 0], 1.0 - lod["uvs"][:, 1]], 1), atol=1e-6)
    np.testing.assert_array_equal(accessor(document, primitive.indices).reshape(-1, 3), lod["triangles"])
    material = document.materials[primitive.material]
    pbr = material.pbrMetallicRoughness
    assert (pbr.metallicFactor, pbr.roughnessFactor, pbr.baseColorFactor) == (0.0, 1.0, [1.0, 1.0, 1.0, 1.0])
    assert material.extensions == {"KHR_materials_specular": {"specularFactor": 0.0}, "KHR_materials_ior": {"ior": 1.0}}
    # The images are the PNGs beside it, top row first (glTF's v = 0).
    albedo = image(document, document.textures[pbr.baseColorTexture.index].source)
    normal = image(document, document.textures[material.normalTexture.index].source)
    np.testing.assert_array_equal(albedo, np.asarray(Image.open(tmp_path / "lod_albedo.png")))
    np.testing.assert_array_equal(normal, np.asarray(Image.open(tmp_path / "lod_normal.png")))


@pytest.fixture(scope="module")
def validator() -> Path:
    """The installed gltf-validator package (installed into .node/ if missing)."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are needed to run Khronos' glTF-Validator (npm package gltf-validator): "
                    "install Node.js")
    if not (VALIDATOR / "package.json").is_file():
        result = subprocess.run(["npm", "install", "--prefix", str(VALIDATOR_PREFIX), "--no-save", "--no-audit",
                                 "--no-fund", GLTF_VALIDATOR], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"npm could not install {GLTF_VALIDATOR}: {result.stderr}"
    return VALIDATOR


@pytest.mark.parametrize("level", LEVELS)
def test_khronos_gltf_validator_finds_no_error_in_the_glb(panda_chain, validator, level):
    result = subprocess.run(["node", str(Path(__file__).with_name("gltf_validate.js")), str(validator),
                             str(panda_chain / level / "panda.glb")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    issues = report["issues"]
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"]
    assert report["info"]["totalTriangleCount"] == json.loads((panda_chain / level / "metrics.json").read_text())[
        "triangles"]


def load_glb(path: Path, **settings) -> NodePath:
    import gltf
    return NodePath(gltf.load_model(Filename.fromOsSpecific(str(path)), gltf.GltfSettings(**settings)))


@pytest.mark.parametrize("level", LEVELS)
def test_panda3d_gltf_loads_the_glb_with_the_lods_triangles_where_the_bam_has_them(panda_chain, level):
    from test_export import load
    folder = panda_chain / level
    triangles = json.loads((folder / "metrics.json").read_text())["triangles"]
    glb, bam = load_glb(folder / "panda.glb"), load(folder / "panda.bam")
    assert triangle_count(glb) == triangle_count(bam) == triangles
    # Converted back to Panda3D's Z-up by panda3d-gltf, it lies where the .bam does...
    for glb_corner, bam_corner in zip(glb.getTightBounds(), bam.getTightBounds()):
        np.testing.assert_allclose(glb_corner, bam_corner, atol=1e-4)
    # ...and as stored, it is Y-up: the .bam's height (z) is the file's y, same units.
    (low, high), (bam_low, bam_high) = load_glb(folder / "panda.glb", skip_axis_conversion=True).getTightBounds(), \
        bam.getTightBounds()
    np.testing.assert_allclose([low[1], high[1]], [bam_low[2], bam_high[2]], atol=1e-4)
    np.testing.assert_allclose([low[2], high[2]], [-bam_high[1], -bam_low[1]], atol=1e-4)


def test_the_auto_shader_draws_the_glb_as_it_draws_the_bam(panda_chain, tmp_path):
    """8 views, 256^2, a linear pipeline (glTF's base colour is sRGB). Measured on the
    panda's 1000-triangle LOD: 89 dB between the two; with the normal map read with
    green flipped, 29 dB; with a flat map, 31 dB (so the map is there and read the .bam's
    way). Without KHR_materials_ior's index of 1, panda3d-gltf's default specular made
    it 18.5 dB."""
    folder = panda_chain / "lod0"
    result = run_in_x([str(Path(__file__).with_name("glb_script.py")), "--views", "8", str(folder / "panda.bam"),
                       str(folder / "panda.glb")], tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    [line] = [json.loads(text) for text in result.stdout.splitlines() if text.startswith("{")]
    assert line["triangles"] == json.loads((folder / "metrics.json").read_text())["triangles"]
    assert line["covered_pixels"] > 20_000, line
    assert line["psnr"] >= 40.0, line
    assert line["psnr"] > line["psnr_flat"] + 5.0 and line["psnr"] > line["psnr_flipped"] + 5.0, line
