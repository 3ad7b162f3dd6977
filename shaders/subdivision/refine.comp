#version 430
// After P (the subdivision kind): every refined vertex of theta+ and theta- as its
// Catmull-Clark stencil over the cage vertices P just perturbed (optimizer/subdivision/
// stencils.py computed the stencils once on the host). One invocation per (side, vertex).
layout(local_size_x = 64) in;

uniform isamplerBuffer stencil_offsets;  // per refined vertex: its first entry; one more at the end
uniform isamplerBuffer stencil_cages;    // per entry: the cage vertex
uniform samplerBuffer stencil_weights;   // per entry: its weight
uniform samplerBuffer cage;              // xyz per cage vertex, [theta+ | theta-]
layout(r32f) uniform writeonly imageBuffer smooth_positions;  // xyz per refined vertex, [theta+ | theta-]
uniform int vertex_count;

void main() {
    int invocation = int(gl_GlobalInvocationID.x);
    if (invocation >= 2 * vertex_count) return;
    int side = invocation / vertex_count;
    int vertex = invocation - side * vertex_count;
    int cage_base = side * (textureSize(cage) / 2);
    vec3 position = vec3(0.0);
    int end = texelFetch(stencil_offsets, vertex + 1).x;
    for (int e = texelFetch(stencil_offsets, vertex).x; e < end; ++e) {
        int base = cage_base + 3 * texelFetch(stencil_cages, e).x;
        position += texelFetch(stencil_weights, e).x *
                    vec3(texelFetch(cage, base).x, texelFetch(cage, base + 1).x, texelFetch(cage, base + 2).x);
    }
    int out_base = 3 * invocation;
    for (int c = 0; c < 3; ++c) imageStore(smooth_positions, out_base + c, vec4(position[c]));
}
