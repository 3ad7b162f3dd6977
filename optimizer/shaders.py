"""Loading our GLSL: plain files, specialised with ``#define``s.

Shaders are never assembled from Python string fragments. The core's files are in
``shaders/core``, each kind's in a folder of its own (``shaders/surface``); a shader is
named by its path there ("core/perturb.comp"), or, for a kind outside this package (the
contract test's), by a ``pathlib.Path`` to its file. A file pulls in a helper with
``#include "name.glsl"``, looked for beside the including file, then in ``shaders/core``;
a caller may point an include at another file (``includes``: how P writes a set's copies
is such an include). Injected ``#define`` lines go right after ``#version``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path, PurePosixPath

from panda3d.core import Shader

from .constants import SHADER_CONSTANTS
from .errors import SgeError

_INCLUDE = re.compile(r'^[ \t]*#include[ \t]+"([^"]+)"[ \t]*$', re.MULTILINE)
CORE = "core"


def shader_source(name: "str | Path", includes: dict[str, "str | Path"] | None = None) -> str:
    """The text of shader ``name`` with its includes resolved (``includes``: include
    name -> the file to use instead). ``#line`` directives keep the GL's messages pointing
    at the file and line that were written: source number 0 is ``name``, 1, 2, ... its
    includes, as the text's last line lists."""
    return _shader_source(name, tuple(sorted((includes or {}).items())))


@lru_cache(maxsize=None)
def _shader_source(name: "str | Path", includes: tuple) -> str:
    files = [name]
    body = _resolve(name, (), files, dict(includes))
    listing = ", ".join(f"{number} = {file}" for number, file in enumerate(files))
    return f"{body.removesuffix(chr(10))}\n// GLSL source numbers: {listing}\n"


def _read(name: "str | Path") -> str:
    try:
        if isinstance(name, Path):
            return name.read_text(encoding="utf-8")
        return resources.files("shaders").joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SgeError(f"shader file '{name}' is missing from the installed package; reinstall it") from None


def _exists(name: "str | Path") -> bool:
    return name.is_file() if isinstance(name, Path) else resources.files("shaders").joinpath(name).is_file()


def _find_include(included: str, by: "str | Path", includes: dict) -> "str | Path":
    """An include: as ``includes`` redirects it, else beside the including file, else a
    core helper."""
    if included in includes:
        return includes[included]
    beside = by.parent / included if isinstance(by, Path) else str(PurePosixPath(by).parent / included)
    return beside if _exists(beside) else f"{CORE}/{included}"


def _resolve(name: "str | Path", stack: tuple, files: list, includes: dict) -> str:
    if name in stack:
        raise SgeError(f"shader include cycle: {' -> '.join(str(n) for n in stack + (name,))}")
    text = _read(name)
    number = files.index(name)

    def include(match: re.Match) -> str:
        included = _find_include(match.group(1), name, includes)
        if included not in files:
            files.append(included)
        after = text.count("\n", 0, match.end()) + 2  # the line after the #include, 1-based
        text_of = _resolve(included, stack + (name,), files, includes).removesuffix("\n")
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


def compute_shader(name: "str | Path", defines: dict[str, object] | None = None,
                   includes: dict[str, "str | Path"] | None = None) -> Shader:
    """A compute shader (``name`` as ``shader_source`` takes it)."""
    return Shader.makeCompute(Shader.SL_GLSL, specialise(shader_source(name, includes), defines))


def raster_shader(vertex: "str | Path", fragment: "str | Path", defines: dict[str, object] | None = None) -> Shader:
    """A vertex + fragment shader pair (named as ``shader_source`` takes them)."""
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
