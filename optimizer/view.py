"""Views: where the camera is for a step. One PTA holds the model-view-projection matrix
that every render pass reads, so moving the camera costs one write per step."""

from __future__ import annotations

import numpy as np
from panda3d.core import PTA_LMatrix4f, PTA_LVecBase4f


def perspective(tan_half_fov: float, near: float = 1.0, far: float = 50.0) -> np.ndarray:
    """An OpenGL projection matrix (column vectors) for a square image."""
    f = 1.0 / tan_half_fov
    return np.array([
        [f, 0, 0, 0],
        [0, f, 0, 0],
        [0, 0, -(far + near) / (far - near), -2 * far * near / (far - near)],
        [0, 0, -1, 0],
    ], np.float64)


def translation(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation (a normalised Gaussian quaternion) as a 4x4 matrix."""
    w, x, y, z = rng.standard_normal(4)
    n = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    m = np.eye(4)
    m[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    return m


def random_direction(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random unit vector."""
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


class View:
    """The shared ``model_view_projection``, ``light`` and ``camera_position`` inputs.

    Written through numpy views of the PTAs' memory: a step's view costs a few copies,
    not a Panda3D call per value."""

    def __init__(self):
        self.matrices = PTA_LMatrix4f.emptyArray(1)
        self.camera = PTA_LVecBase4f.emptyArray(1)
        self.lights = PTA_LVecBase4f.emptyArray(1)
        self.matrix_values = np.frombuffer(self.matrices, np.float32)
        self.camera_values = np.frombuffer(self.camera, np.float32)
        self.light_values = np.frombuffer(self.lights, np.float32)
        self.light_values[:] = (0.0, 0.0, 1.0, 1.0)  # unlit until a light is set
        self.camera_values[3] = 1.0

    def set_light(self, direction, ambient: float) -> None:
        """A directional light towards ``direction`` (model space) plus ``ambient``."""
        x, y, z = np.asarray(direction, np.float64) / np.linalg.norm(direction)
        self.light_values[:] = (x, y, z, ambient)

    def set(self, model_view_projection: np.ndarray) -> None:
        """Set from a column-vector (OpenGL-style) 4x4 matrix."""
        _set_view(self, np.asarray(model_view_projection, np.float64))

    def inputs(self) -> dict:
        return {"model_view_projection": self.matrices, "light": self.lights, "camera_position": self.camera}


def set_views(views: list[View], matrices) -> None:
    """Set ``views[k]`` from ``matrices[k]`` (4x4 float64, column vectors); the eyes of
    several views are solved in one call."""
    if len(views) == 1:
        _set_view(views[0], np.asarray(matrices[0], np.float64))
        return
    matrices = np.asarray(matrices, np.float64)
    # GLSL reads the 16 floats column-major; Panda3D's row-major storage of M^T is
    # exactly that layout.
    transposed = matrices.astype(np.float32).transpose(0, 2, 1)
    clip_eye = np.zeros((len(matrices), 4, 1))
    clip_eye[:, 2] = 1.0
    eyes = np.linalg.solve(matrices, clip_eye)[..., 0]  # as _set_view's, bit for bit
    affine = np.abs(eyes[:, 3]) < 1e-12
    cameras = np.ones((len(matrices), 4), np.float32)
    cameras[:, :3] = eyes[:, :3] / np.where(affine, 1.0, eyes[:, 3])[:, None]
    for k in np.nonzero(affine)[0]:
        cameras[k, :3] = _far_eye(eyes[k])
    for view, matrix, camera in zip(views, transposed, cameras):
        view.matrix_values[:] = matrix.ravel()
        view.camera_values[:] = camera


_CLIP_EYE = np.array([0.0, 0.0, 1.0, 0.0])


def _set_view(view: View, matrix: np.ndarray) -> None:
    # GLSL reads the 16 floats column-major; Panda3D's row-major storage of M^T is
    # exactly that layout.
    view.matrix_values[:] = matrix.astype(np.float32).T.ravel()
    view.camera_values[:3] = eye_position(matrix)  # the specular lobe's view direction


def eye_position(matrix: np.ndarray) -> np.ndarray:
    """The eye of a column-vector 4x4 model-view-projection, in model space: the
    projection's centre, where clip (0, 0, 1, 0) maps back to."""
    eye = np.linalg.solve(np.asarray(matrix, np.float64), _CLIP_EYE)
    return _far_eye(eye) if abs(eye[3]) < 1e-12 else eye[:3] / eye[3]


def _far_eye(eye: np.ndarray) -> np.ndarray:
    """An affine (orthographic) view's eye: far away, towards the near plane."""
    towards_near = -eye[:3]
    return 1e6 * towards_near / np.linalg.norm(towards_near)
