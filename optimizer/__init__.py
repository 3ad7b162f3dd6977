"""Per-pixel stochastic gradient estimation (SGE) in Panda3D: the optimizer core.

The step (``optimizer.sge.Optimizer.step``): P (update + perturb) -> render theta+,
theta-, reference -> G. Parameters live on the GPU for the whole run.
"""

from .errors import SgeError
from .gpu import GpuContext
from .surface.mesh import Mesh
from .parameters import ContributorDomain, ParameterSet, Settings
from .sge import Optimizer
from .surface.texture import TextureSet

__all__ = ["ContributorDomain", "GpuContext", "Mesh", "Optimizer", "ParameterSet", "Settings", "SgeError",
           "TextureSet"]
