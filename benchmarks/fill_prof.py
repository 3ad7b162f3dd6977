"""Diagnostic used for docs/BENCHMARKS.md; run from the repository root with the package importable."""
import time
from panda3d.core import (FrameBufferProperties, GraphicsOutput, Texture, NodePath, Shader, CardMaker)
from optimizer.gpu import GpuContext, _camera_for
ctx = GpuContext.headless()
VERT = """#version 430
in vec4 p3d_Vertex; uniform mat4 p3d_ModelViewProjectionMatrix;
void main() { gl_Position = p3d_ModelViewProjectionMatrix * p3d_Vertex; }"""
FRAG = """#version 430
layout(location=0) out vec4 c0; layout(location=1) out vec4 c1; layout(location=2) out vec4 c2;
void main() { c0 = vec4(gl_FragCoord.xy * 1e-3, 0.5, 1.0); c1 = vec4(1.0); c2 = vec4(0.25); }"""
shader = Shader.make(Shader.SL_GLSL, VERT, FRAG)
def make(res, float_color, aux, depth, mode):
    props = FrameBufferProperties()
    if float_color:
        props.setRgbaBits(32, 32, 32, 32); props.setFloatColor(True)
    else:
        props.setRgbaBits(8, 8, 8, 8)
    if aux: props.setAuxFloat(aux)
    if depth: props.setDepthBits(24)
    buf = ctx.make_buffer("fill", -50, (res, res), props)
    planes = [GraphicsOutput.RTP_color, GraphicsOutput.RTP_aux_float_0, GraphicsOutput.RTP_aux_float_1][:1 + aux]
    texs = []
    for p in planes:
        t = Texture(); t.setMinfilter(Texture.FT_nearest); t.setMagfilter(Texture.FT_nearest)
        buf.addRenderTexture(t, mode, p); texs.append(t)
    for i in range(aux):
        buf.setClearActive(GraphicsOutput.RTP_aux_float_0 + i, True)
    scene = NodePath("s")
    cam = _camera_for(buf, scene)
    cm = CardMaker("c"); cm.setFrame(-1, 1, -1, 1)
    card = scene.attachNewNode(cm.generate()); card.setY(5); card.setShader(shader)
    from panda3d.core import OrthographicLens
    lens = OrthographicLens(); lens.setFilmSize(2, 2); cam.node().setLens(lens)
    return buf, texs
def bench(res, *cfg):
    buf, texs = make(res, *cfg)
    for _ in range(5): ctx.render_frame()
    ctx.sync(texs[0])
    t = time.perf_counter()
    for _ in range(50): ctx.render_frame()
    ctx.sync(texs[0])
    ms = 1000 * (time.perf_counter() - t) / 50
    print(res, cfg, f"{ms:.3f} ms", buf.getFbProperties(), texs[0].getFormat(), flush=True)
    ctx.remove_buffer(buf)
B = GraphicsOutput.RTM_bind_or_copy
for res in (1024, 2048):
    bench(res, True, 2, True, B)
    bench(res, True, 0, True, B)
    bench(res, False, 0, True, B)
    bench(res, True, 2, False, B)
    bench(res, False, 0, False, B)
    bench(res, True, 2, True, GraphicsOutput.RTM_bind_layered)
