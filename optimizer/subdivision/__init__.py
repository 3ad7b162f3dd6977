"""The subdivision kind: a Catmull-Clark control cage and a displacement map as
parameters (stencils.py on the host, kind.py on the GPU, scenario.py the LOD job with it)."""
