#version 430
// After refine.comp: each refined vertex of theta+ and theta- moved along its smooth
// normal (area-weighted over the refined triangles of that side) by the displacement map
// of that side, sampled bilinearly at the vertex's UV. One invocation per (side, vertex).
#include "../surface/area_normal.glsl"
layout(local_size_x = 64) in;

uniform samplerBuffer smooth_positions;      // refine.comp's, [theta+ | theta-]
uniform samplerBuffer displacement_uvs;      // uv per welded refined vertex (its first corner's)
uniform sampler2D displacement_plus;         // P's copies of the displacement map (.r)
uniform sampler2D displacement_minus;
layout(r32f) uniform writeonly imageBuffer displaced_positions;  // xyz per vertex, [theta+ | theta-]
uniform int vertex_count;

void main() {
    int invocation = int(gl_GlobalInvocationID.x);
    if (invocation >= 2 * vertex_count) return;
    int side = invocation / vertex_count;
    int vertex = invocation - side * vertex_count;
    vec3 normal = area_normal(smooth_positions, side, vertex);
    vec2 uv = vec2(texelFetch(displacement_uvs, 2 * vertex).x, texelFetch(displacement_uvs, 2 * vertex + 1).x);
    // Compute shaders have no derivatives: level 0 explicitly (the map has no mips).
    float height = side == 0 ? textureLod(displacement_plus, uv, 0.0).r : textureLod(displacement_minus, uv, 0.0).r;
    vec3 position = fetch_position(smooth_positions, side, vertex) + height * normal;
    for (int c = 0; c < 3; ++c) imageStore(displaced_positions, 3 * invocation + c, vec4(position[c]));
}
