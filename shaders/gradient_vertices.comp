#version 430
// G for mesh vertices: one invocation per pixel. The contributors of a pixel are the
// vertices of the triangles named by the theta+ and the theta- ID targets (their union:
// a pixel covered in one render only gives the silhouette gradient). Every parameter of
// a vertex (position, color, ...) shares this contributor set, so G accumulates
// sum_p Delta_p and n per vertex; P applies delta_i / (2 eps) per parameter.
#include "common.glsl"
#include "targets.glsl"

layout(local_size_x = 8, local_size_y = 8) in;
uniform isamplerBuffer triangles;              // vertex index per triangle corner
uniform sampler2D uv_plus;                     // .zw: barycentrics of corners 0 and 1
uniform sampler2D uv_minus;
layout(r32i) uniform iimageBuffer accumulator; // [parity][vertex][ACCUMULATOR_ENTRIES]
uniform int element_count;
uniform int barycentric_weights;               // 1: w_p = the vertex's barycentric weight

void accumulate(int vertex, float delta, float weight) {
    int base = (PARITY * element_count + vertex) * ACCUMULATOR_ENTRIES;
    ATOMIC_ADD_FIXED(accumulator, base, to_fixed(weight * delta));
    ATOMIC_ADD_FIXED(accumulator, base + 2, to_fixed(weight));
}

ivec3 corners(int triangle) {
    return ivec3(texelFetch(triangles, 3 * triangle).x, texelFetch(triangles, 3 * triangle + 1).x,
                 texelFetch(triangles, 3 * triangle + 2).x);
}

vec3 weights(sampler2D uv_target, ivec2 pixel) {
    if (barycentric_weights == 0) return vec3(1.0);
    vec2 b = texelFetch(uv_target, pixel, 0).zw;
    return clamp(vec3(b, 1.0 - b.x - b.y), 0.0, 1.0);
}

void main() {
    ivec2 pixel = ivec2(gl_GlobalInvocationID.xy);
    PixelSample s = read_pixel(pixel);
    if (!s.covered) return;
    float delta = s.loss_plus - s.loss_minus;

    // The union of both renders' contributors; a vertex named by both takes its larger
    // weight (with uniform weights: it counts once).
    ivec3 plus = s.id_plus >= 0 ? corners(s.id_plus) : ivec3(-1);
    ivec3 minus = s.id_minus >= 0 ? corners(s.id_minus) : ivec3(-1);
    vec3 plus_weight = s.id_plus >= 0 ? weights(uv_plus, pixel) : vec3(0.0);
    vec3 minus_weight = s.id_minus >= 0 ? weights(uv_minus, pixel) : vec3(0.0);
    for (int k = 0; k < 3; ++k) {
        if (plus[k] < 0) break;
        float weight = plus_weight[k];
        for (int j = 0; j < 3; ++j) if (minus[j] == plus[k]) weight = max(weight, minus_weight[j]);
        accumulate(plus[k], delta, weight);
    }
    for (int k = 0; k < 3; ++k) {
        if (minus[k] < 0) break;
        if (any(equal(plus, ivec3(minus[k])))) continue;
        accumulate(minus[k], delta, minus_weight[k]);
    }
}
