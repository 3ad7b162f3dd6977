#version 430
// Vertex normals that follow the positions: after the positions' P (a mesh with live
// normals) or after displace.comp (a subdivision surface), the area-weighted normal of
// every split vertex (a UV seam splits a welded vertex) for theta+ and theta-, in the
// [theta+ | theta-] layout the mesh's draw reads (mesh.vert). One invocation per
// (side, split vertex).
#include "area_normal.glsl"
layout(local_size_x = 64) in;

uniform samplerBuffer welded_positions;      // xyz per welded vertex, [theta+ | theta-]
uniform isamplerBuffer position_index;       // the welded vertex of each split vertex
layout(r32f) uniform writeonly imageBuffer vertex_normals;  // xyz per split vertex, [theta+ | theta-]
uniform int split_count;

void main() {
    int invocation = int(gl_GlobalInvocationID.x);
    if (invocation >= 2 * split_count) return;
    int side = invocation / split_count;
    int vertex = invocation - side * split_count;
    vec3 normal = area_normal(welded_positions, side, texelFetch(position_index, vertex).x);
    if (normal == vec3(0.0)) normal = vec3(0.0, 0.0, 1.0);
    for (int c = 0; c < 3; ++c) imageStore(vertex_normals, 3 * invocation + c, vec4(normal[c]));
}
