#version 430
#ifndef PANDA_CAMERA
#extension GL_ARB_shader_viewport_layer_array : require
#endif
// Draws an optimised mesh by vertex pulling: the Geom holds 3 x triangles dummy vertices,
// and each reads its real data by gl_VertexID from the buffer textures P wrote, so the
// parameters never leave the GPU. `side` picks theta+ (0) or theta- (1): each perturbed
// buffer holds [theta+ | theta-], and each render its page of the optimizer's layered
// targets (optimizer/gpu.py: PassBuffer).
#include "view.glsl"

uniform isamplerBuffer triangles;   // vertex index per triangle corner
uniform isamplerBuffer position_index;  // the position row of each vertex (seams share one)
uniform samplerBuffer positions;    // xyz per vertex, [theta+ | theta-]
uniform samplerBuffer colors;       // rgb per vertex, [theta+ | theta-]
uniform samplerBuffer uvs;          // uv per vertex, [theta+ | theta-]
uniform samplerBuffer normals;      // xyz per vertex, [theta+ | theta-] (lit meshes)
uniform samplerBuffer tangents;     // xyz per vertex, [theta+ | theta-] (normal-mapped meshes)
uniform samplerBuffer binormals;    // xyz per vertex, [theta+ | theta-]
uniform int side;

out vec3 surface_color;
out vec2 surface_uv;
out vec3 surface_normal;
out vec3 surface_position;   // model space
out vec3 surface_tangent;
out vec3 surface_binormal;
out vec2 surface_barycentric;  // of corners 0 and 1, for G's per-vertex weights

vec3 fetch3(samplerBuffer data, int vertex) {
    int base = side * (textureSize(data) / 2) + 3 * vertex;
    return vec3(texelFetch(data, base).x, texelFetch(data, base + 1).x, texelFetch(data, base + 2).x);
}

void main() {
    int vertex = texelFetch(triangles, gl_VertexID).x;
    surface_color = fetch3(colors, vertex);
    surface_normal = fetch3(normals, vertex);
    surface_tangent = fetch3(tangents, vertex);
    surface_binormal = fetch3(binormals, vertex);
    int uv_base = side * (textureSize(uvs) / 2) + 2 * vertex;
    surface_uv = vec2(texelFetch(uvs, uv_base).x, texelFetch(uvs, uv_base + 1).x);
    int corner = gl_VertexID % 3;
    surface_barycentric = vec2(corner == 0, corner == 1);
    surface_position = fetch3(positions, texelFetch(position_index, vertex).x);
    gl_Position = project(surface_position);
#ifndef PANDA_CAMERA
    gl_Layer = side;
#endif
}
