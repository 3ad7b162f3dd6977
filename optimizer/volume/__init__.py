"""Volumes: an N^3 grid of density and linear RGB at voxel centres (trilinear), optimised
as a parameter kind and ray-marched by the engine (``kind``), the SPEC's volume scenario
(``scenario``), and its files (``export``: .npz and Panda3D .txo)."""

from .kind import AnalyticVolume, GridReference, VolumeGrid

__all__ = ["AnalyticVolume", "GridReference", "VolumeGrid"]
