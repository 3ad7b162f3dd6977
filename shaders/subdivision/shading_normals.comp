#version 430
// After displace.comp: the shading normal of every split vertex (a UV seam splits a
// refined vertex) of theta+ and theta-: the area-weighted normal of the displaced
// surface at its welded vertex, in the [theta+ | theta-] layout the mesh's draw reads
// (shaders/surface/mesh.vert). One invocation per (side, split vertex).
#include "normals.glsl"
layout(local_size_x = 64) in;

uniform samplerBuffer displaced_positions;   // displace.comp's
uniform isamplerBuffer position_index;       // the welded vertex of each split vertex
layout(r32f) uniform writeonly imageBuffer shading_normals;  // xyz per split vertex, [theta+ | theta-]
uniform int split_count;

void main() {
    int invocation = int(gl_GlobalInvocationID.x);
    if (invocation >= 2 * split_count) return;
    int side = invocation / split_count;
    int vertex = invocation - side * split_count;
    vec3 normal = area_normal(displaced_positions, side, texelFetch(position_index, vertex).x);
    if (normal == vec3(0.0)) normal = vec3(0.0, 0.0, 1.0);
    for (int c = 0; c < 3; ++c) imageStore(shading_normals, 3 * invocation + c, vec4(normal[c]));
}
