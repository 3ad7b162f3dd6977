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

from .errors import SgeError

_INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*$', re.MULTILINE)


@lru_cache(maxsize=None)
def shader_source(name: str) -> str:
    """The text of ``shaders/<name>`` with its includes resolved."""
    return _resolve(name, ())


def _resolve(name: str, stack: tuple[str, ...]) -> str:
    if name in stack:
        raise SgeError(f"shader include cycle: {' -> '.join(stack + (name,))}")
    try:
        text = resources.files("shaders").joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SgeError(f"shader file '{name}' is missing from the installed package; reinstall it") from None
    return _INCLUDE.sub(lambda m: _resolve(m.group(1), stack + (name,)), text)


def specialise(source: str, defines: dict[str, object] | None = None) -> str:
    """Insert ``#define NAME VALUE`` lines after the ``#version`` line of ``source``."""
    if not defines:
        return source
    lines = "".join(f"#define {key} {'' if value is True else value}\n" for key, value in sorted(defines.items()))
    version, _, body = source.partition("\n")
    return f"{version}\n{lines}{body}"


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
        raise SgeError(f"shader {name} failed to compile on this GPU; the GL log above has the line")
