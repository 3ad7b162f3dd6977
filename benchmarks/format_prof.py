"""Diagnostic for docs/BENCHMARKS.md (issue 25): what a full-screen float MRT render costs per
attachment format, drawn as the step's renders are (layered texture arrays, gl_Layer picks
the page, three draws a frame). Run from the repository root with the package importable:
`python3 benchmarks/format_prof.py [RES]`. Prints one JSON line per layout."""
import json
import sys
import time

from panda3d.core import (CardMaker, FrameBufferProperties, GraphicsOutput, NodePath, OrthographicLens, Shader,
                          Texture)

from optimizer.gpu import GpuContext, _camera_for

ctx = GpuContext.headless()
VERT = """#version 430
#extension GL_ARB_shader_viewport_layer_array : require
in vec4 p3d_Vertex; uniform mat4 p3d_ModelViewProjectionMatrix; uniform int page;
void main() { gl_Position = p3d_ModelViewProjectionMatrix * p3d_Vertex; gl_Layer = page; }"""
FRAG = """#version 430
layout(location=0) out vec4 c0; layout(location=1) out vec4 c1; layout(location=2) out vec4 c2;
layout(location=3) out vec4 c3;
void main() { c0 = vec4(gl_FragCoord.xy * 1e-3, 0.5, 1.0); c1 = vec4(1.0); c2 = vec4(0.25); c3 = vec4(0.5); }"""
SHADER = Shader.make(Shader.SL_GLSL, VERT, FRAG)
ATTACH = {"float": [GraphicsOutput.RTP_aux_float_0, GraphicsOutput.RTP_aux_float_1, GraphicsOutput.RTP_aux_float_2],
          "half": [GraphicsOutput.RTP_aux_hrgba_0, GraphicsOutput.RTP_aux_hrgba_1, GraphicsOutput.RTP_aux_hrgba_2]}
GL_FORMATS = {Texture.F_rgba32: "rgba32f", Texture.F_rgba16: "rgba16f"}


def layout(res, color_bits, aux_float, aux_half, pages, draws):
    props = FrameBufferProperties()
    props.setRgbaBits(color_bits, color_bits, color_bits, color_bits)
    props.setFloatColor(True)
    props.setAuxFloat(aux_float)
    props.setAuxHrgba(aux_half)
    props.setDepthBits(24)
    buf = ctx.make_buffer("fill", -50, (res, res), props)
    buf.setClearColorActive(False)
    buf.setClearDepthActive(False)
    planes = [GraphicsOutput.RTP_color] + ATTACH["float"][:aux_float] + ATTACH["half"][:aux_half]
    textures = []
    for plane in planes:
        t = Texture()
        t.setup2dTextureArray(res, res, pages, Texture.T_float, Texture.F_rgba32)
        t.setMinfilter(Texture.FT_nearest)
        t.setMagfilter(Texture.FT_nearest)
        buf.addRenderTexture(t, GraphicsOutput.RTM_bind_layered, plane)
        textures.append(t)
    scene = NodePath("s")
    region = buf.makeDisplayRegion()
    cam = _camera_for("fill-cam", scene)
    region.setCamera(cam)
    region.setClearDepthActive(True)
    lens = OrthographicLens()
    lens.setFilmSize(2, 2)
    cam.node().setLens(lens)
    for d in range(draws):
        cm = CardMaker(f"c{d}")
        cm.setFrame(-1, 1, -1, 1)
        card = scene.attachNewNode(cm.generate())
        card.setY(5)
        card.setShader(SHADER)
        card.setShaderInput("page", d % pages)
    for _ in range(5):
        ctx.render_frame()
    ctx.sync(textures[0])
    n = 50
    t0 = time.perf_counter()
    for _ in range(n):
        ctx.render_frame()
    ctx.sync(textures[0])
    ms = 1000 * (time.perf_counter() - t0) / n
    print(json.dumps({"res": res, "color_bits": color_bits, "aux_float": aux_float, "aux_half": aux_half,
                      "draws": draws, "ms_per_frame": round(ms, 4), "ms_per_draw": round(ms / draws, 4),
                      "formats": [str(t.getFormat()) for t in textures]}), flush=True)
    ctx.remove_buffer(buf)


res = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
for cfg in [(32, 2, 0), (16, 2, 0), (16, 1, 1), (16, 1, 0), (32, 1, 0), (32, 0, 0), (16, 0, 0), (16, 0, 2),
            (32, 3, 0)]:
    layout(res, *cfg, pages=3, draws=3)
layout(res, 32, 2, 0, pages=3, draws=1)
