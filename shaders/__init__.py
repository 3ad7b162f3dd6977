"""The GLSL files of the optimizer, one job each; loaded by ``optimizer.shaders``."""
