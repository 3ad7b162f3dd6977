"""Gaussian splats as a parameter kind (``kind.py``), their .ply files (``ply.py``) and
SPEC's "splats" scenario (``scenario.py``)."""

from .kind import SplatSettings, Splats

__all__ = ["SplatSettings", "Splats"]
