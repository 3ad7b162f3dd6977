"""Loading our GLSL: plain files in the ``shaders`` package, specialised with ``#define``s.

Shaders are never assembled from Python string fragments. A file may pull in a shared
helper with ``#include "name.glsl"`` (resolved here, once per file), and the caller may
inject ``#define`` lines, which go right after ``#version``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from panda3d.core import Shader

from .constants import SHADER_CONSTANTS
from .errors import SgeError

_INCLUDE = re.compile(r'^[ \t]*#include[ \t]+"([^"]+)"[ \t]*$', re.MULTILINE)


@lru_cache(maxsize=None)
def shader_source(name: str) -> str:
    """The text of ``shaders/<name>`` with its includes resolved. ``#line`` directives
    keep the GL's messages pointing at the file and line that were written: source
    number 0 is ``name``, 1, 2, ... its includes, as the text's last line lists."""
    files = [name]
    body = _resolve(name, (), files)
    listing = ", ".join(f"{number} = {file}" for number, file in enumerate(files))
    return f"{body.removesuffix(chr(10))}\n// GLSL source numbers: {listing}\n"


def _resolve(name: str, stack: tuple[str, ...], files: list[str]) -> str:
    if name in stack:
        raise SgeError(f"shader include cycle: {' -> '.join(stack + (name,))}")
    try:
        text = resources.files("shaders").joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SgeError(f"shader file '{name}' is missing from the installed package; reinstall it") from None
    number = files.index(name)

    def include(match: re.Match) -> str:
        included = match.group(1)
        if included not in files:
            files.append(included)
        after = text.count("\n", 0, match.end()) + 2  # the line after the #include, 1-based
        text_of = _resolve(included, stack + (name,), files).removesuffix("\n")
        return f"#line 1 {files.index(included)}\n{text_of}\n#line {after} {number}"

    return _INCLUDE.sub(include, text)


def specialise(source: str, defines: dict[str, object] | None = None) -> str:
    """Insert ``#define NAME VALUE`` lines after the ``#version`` line of ``source``: the
    constants the host shares with every shader (optimizer/constants.py), then
    ``defines``; a ``#line`` after them keeps the file's own line numbers."""
    defines = {**SHADER_CONSTANTS, **(defines or {})}
    lines = "".join(f"#define {key} {'' if value is True else value}\n" for key, value in sorted(defines.items()))
    version, _, body = source.partition("\n")
    return f"{version}\n{lines}#line 2 0\n{body}"


def compute_shader(name: str, defines: dict[str, object] | None = None) -> Shader:
    """A compute shader from ``shaders/<name>``."""
    return Shader.makeCompute(Shader.SL_GLSL, specialise(shader_source(name), defines))


def raster_shader(vertex: str, fragment: str, defines: dict[str, object] | None = None) -> Shader:
    """A vertex + fragment shader pair from ``shaders/``."""
    return Shader.make(
        Shader.SL_GLSL,
        specialise(shader_source(vertex), defines),
        specialise(shader_source(fragment), defines),
    )


def check_compiled(shader: Shader, name: str) -> None:
    """Raise if Panda3D flagged ``shader`` as failing to compile or link."""
    if shader.getErrorFlag():
        raise SgeError(f"shader {name} failed to compile on this GPU; the GL log above has the source number "
                       f"and line (the shader's last line lists the files by number)")
