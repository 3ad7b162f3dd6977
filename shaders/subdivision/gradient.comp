#version 430
// G for the subdivision kind: one invocation per pixel. A pixel shows a refined triangle
// (in theta+ and in theta-: their union); its 3 corners are refined vertices, and each
// is a stencil over cage vertices. Contributors:
//  - cage vertices (CAGE): each corner's STENCIL_CONTRIBUTORS largest stencil entries,
//    weighted barycentric^WEIGHT_POWER x stencil weight (the pixel's sensitivity to that
//    cage vertex through that corner, barycentric-weighted as the mesh kind's vertices);
//  - displacement texels (else): the 4 bilinear texels at each corner's UV, weighted
//    barycentric x bilinear weight (a corner moves by the bilinear sample there).
// Pixels whose coverage flips count (the union): both are geometry.
#include "common.glsl"
#include "targets.glsl"
#include "loss_record.glsl"
#include "../surface/uv_plane.glsl"
#ifndef WEIGHT_POWER
#define WEIGHT_POWER 2.0
#endif

layout(local_size_x = GRADIENT_GROUP, local_size_y = GRADIENT_GROUP) in;
uniform isamplerBuffer welded_corners;        // 3 welded refined vertices per refined triangle
layout(r32i) uniform iimageBuffer accumulator; // [parity][element][ACCUMULATOR_ENTRIES]
uniform int element_count;
#ifdef CAGE
uniform isamplerBuffer top_cages;    // STENCIL_CONTRIBUTORS per refined vertex, -1 = none
uniform samplerBuffer top_weights;
#else
uniform samplerBuffer displacement_uvs;  // uv per welded refined vertex
uniform int texture_width;
uniform int texture_height;
#endif

void accumulate(int element, float delta, float weight) {
    int base = (PARITY * element_count + element) * ACCUMULATOR_ENTRIES;
    ATOMIC_ADD_FIXED(accumulator, base, to_fixed(weight * delta));
    ATOMIC_ADD_FIXED(accumulator, base + 2, to_fixed(weight));
}

// Weights summed per element over the pixel's sub-samples first: one set of atomics each.
const int PIXEL_CONTRIBUTORS = 32;
int contributor_element[PIXEL_CONTRIBUTORS];
float contributor_weight[PIXEL_CONTRIBUTORS];
int contributor_count = 0;
float pixel_delta = 0.0;

void contribute(int element, float weight) {
    if (weight <= 0.0) return;
    for (int k = 0; k < contributor_count; ++k) {
        if (contributor_element[k] == element) { contributor_weight[k] += weight; return; }
    }
    if (contributor_count < PIXEL_CONTRIBUTORS) {
        contributor_element[contributor_count] = element;
        contributor_weight[contributor_count] = weight;
        ++contributor_count;
        return;
    }
    accumulate(element, pixel_delta, weight);  // list full: straight to the atomics
}

// One corner (a welded refined vertex) with its barycentric weight b.
void contribute_corner(int vertex, float b, float share) {
#ifdef CAGE
    float corner_weight = share * pow(b, WEIGHT_POWER);
    for (int k = 0; k < STENCIL_CONTRIBUTORS; ++k) {
        int cage_vertex = texelFetch(top_cages, vertex * STENCIL_CONTRIBUTORS + k).x;
        if (cage_vertex < 0) break;
        contribute(cage_vertex, corner_weight * texelFetch(top_weights, vertex * STENCIL_CONTRIBUTORS + k).x);
    }
#else
    vec2 uv = vec2(texelFetch(displacement_uvs, 2 * vertex).x, texelFetch(displacement_uvs, 2 * vertex + 1).x);
    // The texels a bilinear fetch reads (texel centres at (i + 0.5) / size, repeat wrap).
    vec2 position = uv * vec2(texture_width, texture_height) - 0.5;
    vec2 origin = floor(position);
    vec2 f = position - origin;
    for (int k = 0; k < 4; ++k) {
        ivec2 offset = ivec2(k & 1, k >> 1);
        // Float mod is never negative (integer % of a negative operand is undefined in GLSL).
        ivec2 texel = ivec2(mod(origin + vec2(offset), vec2(texture_width, texture_height)));
        float bilinear = (offset.x == 1 ? f.x : 1.0 - f.x) * (offset.y == 1 ? f.y : 1.0 - f.y);
        contribute(texel.y * texture_width + texel.x, share * b * bilinear);
    }
#endif
}

void contribute_triangle(int triangle, vec3 b, float share) {
    for (int k = 0; k < 3; ++k) contribute_corner(texelFetch(welded_corners, 3 * triangle + k).x, b[k], share);
}

vec3 barycentrics(int render, ivec2 q) {
    vec2 b = uv_at(render, q).zw;
    return clamp(vec3(b, 1.0 - b.x - b.y), 0.0, 1.0);
}

void accumulate_subpixel(ivec2 q, float share) {
    int id_p = decode_id(sample_at(THETA_PLUS, q).x);
    int id_m = decode_id(sample_at(THETA_MINUS, q).x);
    if (id_p < 0 && id_m < 0) return;
    if (id_p == id_m) {
        contribute_triangle(id_p, 0.5 * (barycentrics(THETA_PLUS, q) + barycentrics(THETA_MINUS, q)), share);
        return;
    }
    // Coverage differs: each render's triangle, half the share each.
    if (id_p >= 0) contribute_triangle(id_p, barycentrics(THETA_PLUS, q), 0.5 * share);
    if (id_m >= 0) contribute_triangle(id_m, barycentrics(THETA_MINUS, q), 0.5 * share);
}

void main() {
    ivec2 pixel = ivec2(gl_GlobalInvocationID.xy);
    PixelSample s;
    if (!covered_sample(pixel, s)) return;
    pixel_delta = s.loss_plus - s.loss_minus;
    float share = 1.0 / float(SUPERSAMPLING * SUPERSAMPLING);
    for (int k = 0; k < SUPERSAMPLING * SUPERSAMPLING; ++k) accumulate_subpixel(subpixel(pixel, k), share);
#ifdef UNIFORM_WEIGHTS
    // Each named element counts once per pixel: sum_p Delta_p, SPEC's gradient estimate.
    for (int k = 0; k < contributor_count; ++k) accumulate(contributor_element[k], pixel_delta, 1.0);
#else
    for (int k = 0; k < contributor_count; ++k) accumulate(contributor_element[k], pixel_delta, contributor_weight[k]);
#endif
}
