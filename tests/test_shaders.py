"""Loading our GLSL: the constants the host shares with the shaders are defined once (in
optimizer/constants.py) and injected, ``#line`` directives keep every line of a loaded
shader numbered as in the file it came from, and ``verify_shaders`` catches a render's
shader that does not compile, not only a compute pass's."""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pytest
from panda3d.core import Shader

from optimizer import Mesh, Settings, SgeError, constants
from optimizer.surface.mesh import geom_node
from optimizer.shaders import shader_source, specialise

ALL_FILES = sorted(f"{folder.name}/{path.name}" for folder in resources.files("shaders").iterdir()
                   if folder.is_dir() and not folder.name.startswith("__") for path in folder.iterdir()
                   if path.name.endswith((".comp", ".vert", ".frag", ".glsl")))
SHADER_FILES = [name for name in ALL_FILES if not name.endswith(".glsl")]
COPIES = {"copies.glsl": "core/copies_buffer.glsl"}  # P includes its set's copy writer


def original_lines(text: str) -> list[tuple[int, int, str]]:
    """(source number, line, text) of every line of a loaded shader but the directives,
    numbered as the #line directives in it say (GLSL: #line N S names the next line)."""
    lines, source, number = [], 0, 1
    for line in text.splitlines():
        directive = re.fullmatch(r"#line (\d+) (\d+)", line)
        if directive:
            number, source = int(directive.group(1)), int(directive.group(2))
            continue
        lines.append((source, number, line))
        number += 1
    return lines


@pytest.mark.parametrize("name", SHADER_FILES)
def test_every_line_keeps_its_file_and_number(name):
    text = specialise(shader_source(name, COPIES), {"SOME_DEFINE": 3})
    files = re.search(r"^// GLSL source numbers: (.*)$", text, re.MULTILINE).group(1)
    files = dict((int(number), file) for number, file in (entry.split(" = ") for entry in files.split(", ")))
    assert files[0] == name
    sources = {number: resources.files("shaders").joinpath(file).read_text().splitlines()
               for number, file in files.items()}
    checked = 0
    for source, number, line in original_lines(text):
        if line.startswith(("#version", "#define", "// GLSL source numbers")):
            continue  # the loader's own lines
        assert sources[source][number - 1] == line, (files[source], number)
        checked += 1
    assert checked > 10


def test_the_shared_constants_are_defined_once():
    """Each constant of optimizer/constants.py is injected into every shader, and no GLSL
    file defines it again by hand (a second definition would be a redefinition error)."""
    assert {"core/common.glsl", "core/perturb.comp", "surface/surface.frag"} <= set(ALL_FILES)
    for name in ALL_FILES:
        source = resources.files("shaders").joinpath(name).read_text()
        for constant in constants.SHADER_CONSTANTS:
            assert not re.search(rf"(const\s+\w+\s+{constant}\s*=|#define\s+{constant}\b)", source), (name, constant)
    text = specialise(shader_source("core/perturb.comp", COPIES))
    for constant, value in constants.SHADER_CONSTANTS.items():
        assert f"#define {constant} {value}\n" in text
    assert float(constants.SHADER_CONSTANTS["FIXED_SCALE"]) == constants.FIXED_SCALE == 2.0 ** 24


def test_verify_shaders_covers_the_renders(make_optimizer, context, identity_view):
    positions = np.array([[-0.5, -0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.5, 0.5]], np.float32)
    triangles = np.array([[0, 1, 2]], np.int32)
    mesh = Mesh(positions, triangles, np.full((3, 3), 0.5, np.float32), color_settings=Settings(0.02, 0.01))
    optimizer = make_optimizer(mesh, geom_node("reference", positions, triangles), (16, 16))
    optimizer.step(identity_view)
    optimizer.verify_shaders()  # every pass and render compiled
    broken = Shader.make(Shader.SL_GLSL, "#version 430\nvoid main() { gl_Position = vec4(0.0); }\n",
                         "#version 430\nout vec4 color;\nvoid main() { color = not_declared; }\n")
    optimizer.reference_model.setShader(broken, 100)
    optimizer.step(identity_view)
    with pytest.raises(SgeError, match="shader drawing reference failed to compile"):
        optimizer.verify_shaders()
