// The surface kinds' own plane (optimizer/kind.py), "uv": .xy the interpolated texture
// coordinates, .zw the barycentrics of the triangle's corners 0 and 1 (surface.frag).
uniform sampler2DArray target_uv;

// Read only where sample_at named a primitive (every caller checks that first): the
// fragment that stamped the sample plane wrote the UV too, so a second stamp check would
// fetch the sample plane again.
vec4 uv_at(int render, ivec2 q) { return texelFetch(target_uv, ivec3(q, render), 0); }
