"""The surface kinds: triangle meshes whose vertex positions and colours are parameters
(mesh.py) and texture maps as parameters (texture.py), with the Shading they share
with their reference (mesh.py: Shading, ModelReference); their shaders are in
shaders/surface/."""
