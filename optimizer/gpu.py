"""The GPU side of Panda3D that the optimizer needs: a headless context, buffer textures
that hold parameters for a whole run, offscreen multiple-render-target passes and stages
of compute nodes that run in a fixed order inside one ``renderFrame()``.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import numpy as np
from panda3d.core import (
    Camera,
    ComputeNode,
    FrameBufferProperties,
    Geom,
    GeomEnums,
    GeomNode,
    GeomTriangles,
    GeomVertexData,
    GeomVertexFormat,
    GraphicsEngine,
    GraphicsOutput,
    GraphicsPipe,
    GraphicsPipeSelection,
    NodePath,
    OmniBoundingVolume,
    OrthographicLens,
    ShaderInput,
    Texture,
    WindowProperties,
    loadPrcFileData,
)

from .errors import SgeError

HEADLESS_PRC = """
load-display p3headlessgl
window-type none
audio-library-name null
notify-level-display error
notify-level-glgsg error
notify-level-device error
framebuffer-srgb false
sync-video false
textures-power-2 none
"""

# Panda3D sweeps for GL errors about once a second and shuts rendering down for good after
# gl-max-errors of them (20 by default; -1, documented as "no limit", is reported to stop
# at the first in 1.10). NVIDIA's EGL raised a GL_INVALID_OPERATION per frame from the
# host's 1x1 surface (now inactive), so a GPU run past ~20 s went on with every render
# silently stale. A limit no run reaches, for headless and in-app contexts alike:
GL_ERRORS_PRC = "gl-max-errors 1000000000\n"

LAYER_EXTENSION = "GL_ARB_shader_viewport_layer_array"

_BUFFER_FORMATS = {
    np.dtype(np.float32): (Texture.T_float, Texture.F_r32),
    np.dtype(np.int32): (Texture.T_int, Texture.F_r32i),
}


# The attachments a kind's own planes take, in order (optimizer/kind.py).
KIND_PLANES = (GraphicsOutput.RTP_aux_float_1, GraphicsOutput.RTP_aux_float_2, GraphicsOutput.RTP_aux_float_3)
GPU_MEMORY_INFO_CURRENT_AVAILABLE_VIDMEM_NVX = 0x9049  # GL_NVX_gpu_memory_info, in kB


class GpuContext:
    """One GL context: the engine, the pipe, and the GSG every pass shares.

    Made headless (EGL, no display) by default; ``GpuContext.from_showbase(base)`` wraps
    a running app instead, so the passes render inside the app's own frames.
    """

    def __init__(self, engine: GraphicsEngine, pipe: GraphicsPipe, host: GraphicsOutput):
        self.engine = engine
        self.pipe = pipe
        self.host = host
        self.gsg = host.getGsg()
        self._outputs: list[GraphicsOutput] = []
        self._check_capabilities()

    @classmethod
    def headless(cls) -> "GpuContext":
        loadPrcFileData("sge-headless", HEADLESS_PRC + GL_ERRORS_PRC)
        os.environ.setdefault("EGL_LOG_LEVEL", "fatal")
        engine = GraphicsEngine.getGlobalPtr()
        pipe = GraphicsPipeSelection.getGlobalPtr().makeModulePipe("p3headlessgl")
        if pipe is None or not pipe.isValid():
            raise SgeError("no headless OpenGL (EGL) display could be opened; install the Mesa EGL libraries (libegl1, libgl1-mesa-dri)")
        host = engine.makeOutput(pipe, "sge-host", -1000, FrameBufferProperties(), WindowProperties.size(1, 1),
                                 GraphicsPipe.BF_refuse_window)
        if host is None:
            raise SgeError("the headless OpenGL pipe could not make an offscreen buffer; check the EGL/Mesa installation")
        engine.openWindows()
        # The host only holds the context every pass shares. Drawn, its 1x1 surface raises
        # a GL_INVALID_OPERATION per frame on NVIDIA's EGL; active again at exit, where
        # Panda3D tears it down (inactive, its context is not current there).
        host.setActive(False)
        atexit.register(_close, engine, host)
        return cls(engine, pipe, host)

    @classmethod
    def from_showbase(cls, base) -> "GpuContext":
        loadPrcFileData("sge-gl-errors", GL_ERRORS_PRC)
        return cls(base.graphicsEngine, base.pipe, base.win)

    @property
    def renderer(self) -> str:
        return f"{self.gsg.getDriverRenderer()} (OpenGL {self.gsg.getDriverVersion()})"

    def free_video_memory(self) -> int | None:
        """Bytes of video memory free now, where the driver reports it (NVIDIA's
        GL_NVX_gpu_memory_info), else None. Panda3D 1.10 has no call for it, so GL is asked
        directly in the context Panda3D left current; with none current the answer is 0,
        taken as "not reported"."""
        if not self.gsg.hasExtension("GL_NVX_gpu_memory_info"):
            return None
        import ctypes

        free_kb = ctypes.c_int(0)
        for library in ("libOpenGL.so.0", "libGL.so.1"):
            try:
                ctypes.CDLL(library).glGetIntegerv(GPU_MEMORY_INFO_CURRENT_AVAILABLE_VIDMEM_NVX, ctypes.byref(free_kb))
                break
            except (OSError, AttributeError):
                continue
        return free_kb.value * 1024 if free_kb.value > 0 else None

    def _check_capabilities(self) -> None:
        missing = []
        if not self.gsg.getSupportsComputeShaders():
            missing.append("compute shaders")
        if not self.gsg.getSupportsBufferTexture():
            missing.append("buffer textures")
        if self.gsg.getDriverVersionMajor() * 10 + self.gsg.getDriverVersionMinor() < 43:
            missing.append("OpenGL 4.3")
        if missing:
            raise SgeError(f"the GPU renderer '{self.renderer}' lacks {', '.join(missing)}; "
                           "SGE needs OpenGL 4.3 with compute shaders: update the driver or use another GPU")
        # A step's three renders are one draw each into the pages of layered targets, each
        # picking its page from the vertex shader (gl_Layer).
        if not self.gsg.hasExtension(LAYER_EXTENSION):
            raise SgeError(f"the GPU renderer '{self.renderer}' lacks {LAYER_EXTENSION} (gl_Layer from the "
                           f"vertex shader); update the driver or use another GPU")

    # --- frames ------------------------------------------------------------------------
    def render_frame(self) -> None:
        self.engine.renderFrame()

    def sync(self, texture: Texture) -> None:
        """Wait for the GPU: reading a texture back cannot return before the work on it."""
        self.engine.extractTextureData(texture, self.gsg)

    # --- outputs -----------------------------------------------------------------------
    def check_target_size(self, name: str, size: tuple[int, int]) -> None:
        limit = self.gsg.getMaxTextureDimension()
        if max(size) > limit > 0:
            raise SgeError(f"the {name} would be {size[0]}x{size[1]} but '{self.renderer}' allows "
                           f"at most {limit}x{limit}; use a smaller resolution or less supersampling")

    def make_buffer(self, name: str, sort: int, size: tuple[int, int], props: FrameBufferProperties) -> GraphicsOutput:
        self.check_target_size(f"buffer '{name}'", size)
        buffer = self.engine.makeOutput(self.pipe, name, sort, props, WindowProperties.size(*size),
                                        GraphicsPipe.BF_refuse_window, self.gsg, self.host)
        if buffer is None:
            raise SgeError(f"the renderer '{self.renderer}' cannot make the offscreen buffer '{name}' "
                           f"({size[0]}x{size[1]}, {props}); try a smaller --res")
        self._outputs.append(buffer)
        return buffer

    def remove_buffer(self, output: GraphicsOutput) -> None:
        self.engine.removeWindow(output)
        self._outputs.remove(output)

    def release(self) -> None:
        """Remove every buffer this context made (the host stays)."""
        for output in list(self._outputs):
            self.remove_buffer(output)


def _close(engine: GraphicsEngine, host: GraphicsOutput) -> None:
    """Close every output at exit, the host active again so that its context is current."""
    host.setActive(True)
    engine.removeAllWindows()


# --- vertex pulling --------------------------------------------------------------------
def pulled_geometry(name: str, vertex_count: int) -> NodePath:
    """A node of ``vertex_count`` dummy vertices in triangles, for a kind whose vertex
    shader reads its real data (by gl_VertexID, gl_InstanceID) from the buffers P writes,
    so the parameters never leave the GPU. Never culled: the dummy vertices say nothing
    about where the kind draws."""
    vertex_data = GeomVertexData(name, GeomVertexFormat.getV3(), Geom.UH_static)
    vertex_data.setNumRows(vertex_count)  # dummy rows: gl_VertexID is what counts
    primitive = GeomTriangles(Geom.UH_static)
    primitive.addNextVertices(vertex_count)
    geom = Geom(vertex_data)
    geom.addPrimitive(primitive)
    node = GeomNode(name)
    node.addGeom(geom)
    node.setBounds(OmniBoundingVolume())
    node.setFinal(True)
    return NodePath(node)


# --- buffer textures ---------------------------------------------------------------------
def float_image(name: str, size: tuple[int, int], channels: int = 4) -> Texture:
    """A 2D float texture of ``size`` (width, height) that passes write and read as an
    image (R32F, RG32F or RGBA32F; nothing on the host)."""
    formats = {1: Texture.F_r32, 2: Texture.F_rg32, 4: Texture.F_rgba32}
    texture = Texture(name)
    texture.setup2dTexture(size[0], size[1], Texture.T_float, formats[channels])
    texture.setMinfilter(Texture.FT_nearest)
    texture.setMagfilter(Texture.FT_nearest)
    texture.setClearColor((0, 0, 0, 0))
    return texture


def buffer_texture(name: str, values: np.ndarray) -> Texture:
    """A buffer texture holding ``values`` (float32 -> r32f, int32 -> r32i) on the GPU."""
    values = np.ascontiguousarray(values).ravel()
    component_type, texture_format = _BUFFER_FORMATS[values.dtype]
    texture = Texture(name)
    texture.setupBufferTexture(max(1, values.size), component_type, texture_format, GeomEnums.UH_dynamic)
    if values.size:
        texture.setRamImage(values.tobytes())
    return texture


def upload(texture: Texture, values: np.ndarray) -> None:
    """Replace the contents of a buffer texture (load time only, never per step)."""
    texture.setRamImage(np.ascontiguousarray(values).ravel().astype(_dtype_of(texture)).tobytes())


def read_buffer(context: GpuContext, texture: Texture) -> np.ndarray:
    """Read a buffer texture back into numpy (to save or report, never per step).

    Values ``upload`` gave since the last frame that bound the texture are returned as
    given: Panda3D uploads a RAM image only when a frame binds the texture, and extracting
    before that would read the GPU's older copy and replace the upload with it."""
    if not (texture.hasRamImage() and _upload_pending(context, texture)):
        context.engine.extractTextureData(texture, context.gsg)
    return np.frombuffer(bytes(texture.getRamImage()), dtype=_dtype_of(texture)).copy()


def _upload_pending(context: GpuContext, texture: Texture) -> bool:
    """Whether the texture's RAM image is newer than its GPU copy (no frame bound it since
    it changed). A readback changes the RAM image too, but then both hold the same values."""
    prepared = texture.prepareNow(0, context.gsg.getPreparedObjects(), context.gsg)
    return prepared.wasImageModified()


def _dtype_of(texture: Texture) -> np.dtype:
    return np.dtype(np.int32) if texture.getComponentType() == Texture.T_int else np.dtype(np.float32)


def read_texture(context: GpuContext, texture: "Texture | TargetRegion") -> np.ndarray:
    """A 2D float texture (or one render's page of a texture array) as an (H, W, 4) RGBA
    array, row 0 at the top of the image."""
    if isinstance(texture, TargetRegion):
        return read_pages(context, texture.texture)[texture.page]
    return read_pages(context, texture)[0]


def read_pages(context: GpuContext, texture: Texture) -> np.ndarray:
    """Every page of a float texture array (one read for all), as (pages, H, W, 4) RGBA,
    row 0 at the top of each image."""
    context.engine.extractTextureData(texture, context.gsg)
    data = np.frombuffer(memoryview(texture.getRamImage()), dtype=np.float32)
    image = data.reshape(texture.getZSize(), texture.getYSize(), texture.getXSize(), texture.getNumComponents())
    pad_x, pad_y = texture.getPadXSize(), texture.getPadYSize()
    # Panda3D stores RGBA RAM images as BGRA, bottom row first.
    image = image[:, image.shape[1] - pad_y - 1::-1, :image.shape[2] - pad_x][..., [2, 1, 0, 3]]
    # A RAM image left behind would be uploaded over the next render when G binds it.
    texture.clearRamImage()
    return image


# --- passes ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TargetRegion:
    """One render's page of a target texture array that holds several renders;
    ``read_texture`` reads just that page."""

    texture: Texture
    page: int


@dataclass(frozen=True)
class RenderSlot:
    """Where one render of a ``PassBuffer`` lands: its pages of the color and sample
    planes and of the kind's own planes (the page is the render's ``gl_Layer``)."""

    color: TargetRegion
    sample: TargetRegion
    planes: dict


class PassBuffer:
    """One offscreen buffer that runs an ordered list of passes, each a display region:
    compute regions (scenes of compute nodes) and render regions, whose draws each pick
    a page of layered float color, ID and UV texture arrays (``gl_Layer``).

    Panda3D's frame work is mostly per buffer and per display region (binding, state
    reset, clearing, its share of cull and draw), and a small scene's step is nothing
    else: the cube at R = 64 took 0.35-0.52 ms a step on an H100 as five buffers, 0.25 ms
    as three regions of one buffer (P, the renders, G with the next step's P), for the
    same GPU work. The renders of a step share one region and one clear; each draws into
    its own page at the same pixel coordinates as the others (side by side in one
    texture, the renders of theta+ and theta- differed in the last bits of their
    interpolated colors on llvmpipe, so equal copies did not give Delta = 0). Regions are
    drawn in the order they are made. A compute pass may read the pages the render before
    it wrote: sampling a texture attached to a framebuffer is only a feedback loop for
    draws, not for dispatches.
    """

    def __init__(self, context: GpuContext, name: str, sort: int, render_size: tuple[int, int], slots: int,
                 background=(0.0, 0.0, 0.0, 1.0), planes: tuple[str, ...] = (), color_bits: int = 32):
        if len(planes) > len(KIND_PLANES):
            raise SgeError(f"a kind may write at most {len(KIND_PLANES)} planes of its own, got {len(planes)}")
        props = FrameBufferProperties()
        props.setRgbaBits(color_bits, color_bits, color_bits, color_bits)
        props.setFloatColor(True)
        props.setAuxFloat(1 + len(planes))
        props.setDepthBits(24)
        self.name = name
        self.color_bits = color_bits
        self.background = background
        self.render_size = render_size
        self.buffer = context.make_buffer(name, sort, render_size, props)
        self.buffer.setClearColorActive(False)  # each render region clears the pages
        self.buffer.setClearDepthActive(False)
        # The core's planes (color; sample: element, depth, stamp), then the kind's.
        self.color = self._target(f"{name}-color", GraphicsOutput.RTP_color, slots,
                                  Texture.F_rgba16 if color_bits == 16 else Texture.F_rgba32)
        self.sample = self._target(f"{name}-sample", GraphicsOutput.RTP_aux_float_0, slots)
        self.planes = {plane: self._target(f"{name}-{plane}", attachment, slots)
                       for plane, attachment in zip(planes, KIND_PLANES)}
        self._aux = (GraphicsOutput.RTP_aux_float_0, *KIND_PLANES[:len(planes)])
        self.slots = [RenderSlot(TargetRegion(self.color, page), TargetRegion(self.sample, page),
                                 {plane: TargetRegion(texture, page) for plane, texture in self.planes.items()})
                      for page in range(slots)]
        self.regions: list = []
        self.render_regions: list = []

    def _target(self, name: str, plane, pages: int, texture_format=Texture.F_rgba32) -> Texture:
        texture = Texture(name)
        texture.setup2dTextureArray(*self.render_size, pages, Texture.T_float, texture_format)
        texture.setMinfilter(Texture.FT_nearest)
        texture.setMagfilter(Texture.FT_nearest)
        self.buffer.addRenderTexture(texture, GraphicsOutput.RTM_bind_layered, plane)
        return texture

    def _region(self, scene: NodePath):
        region = self.buffer.makeDisplayRegion()
        region.setSort(len(self.regions))
        region.setCamera(_camera_for(f"{self.name}-{len(self.regions)}", scene))
        self.regions.append(region)
        return region

    def compute_region(self, scene: NodePath):
        """A region dispatching the compute nodes of ``scene`` in scene-graph order."""
        scene.setBin("unsorted", 0)
        return self._region(scene)

    def render_region(self, scene: NodePath):
        """A region clearing every page and drawing ``scene`` (whose draws pick their
        pages)."""
        region = self._region(scene)
        region.setClearColor(self.background)
        region.setClearDepthActive(True)
        for plane in self._aux:
            region.setClearValue(plane, (0, 0, 0, 0))
        self._set_clearing(region, True)
        self.render_regions.append(region)
        return region

    def set_clearing(self, on: bool) -> None:
        """Clear every plane's pages before the renders (on) or leave them (off: readers
        then tell this render's pixels by the stamp in the sample plane's .w; the depth is
        always cleared). Clearing three float pages of three targets is most of a large
        step's cost on an H100 (0.8-1 ms per target at 1024^2)."""
        for region in self.render_regions:
            self._set_clearing(region, on)

    def _set_clearing(self, region, on: bool) -> None:
        region.setClearColorActive(on)
        for plane in self._aux:
            region.setClearActive(plane, on)

    def target_inputs(self) -> dict:
        """The planes as G's shader inputs: target_color, target_sample, target_<plane>."""
        return {"target_color": self.color, "target_sample": self.sample,
                **{f"target_{plane}": texture for plane, texture in self.planes.items()}}


def compute_node(name: str, shader, groups: tuple[int, int, int], inputs: dict) -> NodePath:
    """A compute node dispatching ``groups`` workgroups of ``shader``, not yet in a scene
    (instance it under the scenes that run it). An input may be a ready ``ShaderInput``
    (e.g. an image bound at one mip level)."""
    node = ComputeNode(name)
    node.addDispatch(*groups)
    path = NodePath(node)
    path.setShader(shader)
    for key, value in inputs.items():
        if isinstance(value, ShaderInput):
            path.setShaderInput(value)
        else:
            path.setShaderInput(key, value)
    return path


def _camera_for(name: str, scene: NodePath) -> NodePath:
    camera = Camera(f"{name}-camera", OrthographicLens())
    camera.setScene(scene)
    return scene.attachNewNode(camera)
