#version 430
// G for mesh vertices: one invocation per pixel. The contributors of a pixel are the
// vertices of the triangles named by the theta+ and the theta- ID targets (their union:
// a pixel covered in one render only gives the silhouette gradient). Every parameter of
// a vertex of one kind shares this contributor set, so G accumulates sum_p w_p Delta_p
// and sum_p w_p per vertex and P applies delta_i / (2 eps) per parameter.
//
// Two channels per vertex:
//  0, geometry:   every pixel of the union, weighted by the vertex's barycentric
//                 coordinate to the power WEIGHT_POWER (a pixel near the opposite edge
//                 hardly moves with the vertex but carries the other vertices' noise);
//  1, attributes: only pixels both renders give to the same triangle, weighted by the
//                 barycentric coordinate (the pixel's exact sensitivity to a vertex
//                 color). A pixel whose coverage flips has a Delta of order 1 from the
//                 geometry, which would drown a color's 1e-3; leaving it out loses a
//                 little signal and adds no bias (SPEC.md).
#include "common.glsl"
#include "targets.glsl"
#include "uv_plane.glsl"
#include "loss_record.glsl"
#ifndef WEIGHT_POWER
#define WEIGHT_POWER 2.0
#endif

layout(local_size_x = GRADIENT_GROUP, local_size_y = GRADIENT_GROUP) in;
uniform isamplerBuffer triangles;              // vertex index per triangle corner
layout(r32i) uniform iimageBuffer accumulator; // [parity][vertex][channel][ACCUMULATOR_ENTRIES]
uniform int element_count;
uniform int barycentric_weights;               // 0: every contributing pixel weighs 1

const int CHANNELS = 2;

#ifdef DITHERED_SUMS
// Rounding to the fixed-point quantum by a dither hashed from the term's identity (pixel,
// vertex, channel, entry, step): unbiased however small the term (round-to-nearest drops
// every |term| < 2^-25), still order-independent and bit-reproducible.
uint dither_key = 0u;
int to_fixed_dithered(float value, uint entry) {
    float scaled = clamp(value, -FIXED_LIMIT, FIXED_LIMIT) * FIXED_SCALE;
    uint h = pcg_hash(dither_key ^ pcg_hash(entry));
    return int(floor(scaled + float(h >> 8u) * (1.0 / 16777216.0)));
}
#define TO_FIXED(value, entry) to_fixed_dithered(value, entry)
#else
#define TO_FIXED(value, entry) to_fixed(value)
#endif

void accumulate(int vertex, int channel, float delta, float weight) {
    int base = ((PARITY * element_count + vertex) * CHANNELS + channel) * ACCUMULATOR_ENTRIES;
#ifdef EPSILON_GAIN
    // Both sums of the step with the weights scaled by 1 / (this step's epsilon scale): P
    // divides one by the other, so the gain cancels there, but a shrinking epsilon (the
    // cube's schedule) shrinks every Delta_p with it, and terms w_p Delta_p below the
    // fixed-point quantum 2^-24 round to 0 (a dead zone near the optimum). At most 100x:
    // a weight (<= 1) times the gain stays below to_fixed's clamp (127).
    if (EPSILON_SCALE > 0.0) weight *= min(1.0 / EPSILON_SCALE, 100.0);
#endif
    ATOMIC_ADD_FIXED(accumulator, base, TO_FIXED(weight * delta, uint(4 * (vertex * CHANNELS + channel))));
    ATOMIC_ADD_FIXED(accumulator, base + 2, TO_FIXED(weight, uint(4 * (vertex * CHANNELS + channel) + 1)));
}

// The sub-samples of one pixel name the same few vertices over and over: their weights
// are summed here first, so each vertex costs one set of atomics per pixel.
const int PIXEL_CONTRIBUTORS = 12;
int contributor_vertex[PIXEL_CONTRIBUTORS];
vec2 contributor_weight[PIXEL_CONTRIBUTORS];  // (geometry, attributes)
int contributor_count = 0;
float pixel_delta = 0.0;

void contribute(int vertex, float geometry, float attributes) {
    for (int k = 0; k < contributor_count; ++k) {
        if (contributor_vertex[k] == vertex) {
            contributor_weight[k] += vec2(geometry, attributes);
            return;
        }
    }
    if (contributor_count < PIXEL_CONTRIBUTORS) {
        contributor_vertex[contributor_count] = vertex;
        contributor_weight[contributor_count] = vec2(geometry, attributes);
        ++contributor_count;
        return;
    }
    accumulate(vertex, 0, pixel_delta, geometry);  // list full: straight to the atomics
#ifndef GEOMETRY_ONLY
    accumulate(vertex, 1, pixel_delta, attributes);
#endif
}

// The sub-samples of a pixel mostly lie on one triangle: its corners are fetched once.
int cached_triangle = -1;
ivec3 cached_corners;

ivec3 corners(int triangle) {
    if (triangle != cached_triangle) {
        cached_triangle = triangle;
        cached_corners = ivec3(texelFetch(triangles, 3 * triangle).x, texelFetch(triangles, 3 * triangle + 1).x,
                               texelFetch(triangles, 3 * triangle + 2).x);
    }
    return cached_corners;
}

vec3 barycentrics(int render, ivec2 pixel) {
    vec2 b = uv_at(render, pixel).zw;
    return clamp(vec3(b, 1.0 - b.x - b.y), 0.0, 1.0);
}

vec3 geometry_weights(vec3 b) {
    return barycentric_weights != 0 ? pow(b, vec3(WEIGHT_POWER)) : vec3(1.0);
}

void accumulate_subpixel(ivec2 q, float share) {
    int id_p = decode_id(sample_at(THETA_PLUS, q).x);
    int id_m = decode_id(sample_at(THETA_MINUS, q).x);
    if (id_p < 0 && id_m < 0) return;
    vec3 plus_b = id_p >= 0 ? barycentrics(THETA_PLUS, q) : vec3(0.0);
    vec3 minus_b = id_m >= 0 ? barycentrics(THETA_MINUS, q) : vec3(0.0);

    if (id_p == id_m) {
        ivec3 plus = corners(id_p);
        vec3 b = 0.5 * (plus_b + minus_b);
        vec3 geometry = share * geometry_weights(b);
        vec3 attributes = share * (barycentric_weights != 0 ? b : vec3(1.0));
        for (int k = 0; k < 3; ++k) contribute(plus[k], geometry[k], attributes[k]);
        return;
    }
    // Coverage differs: geometry only, over the union; a vertex named by both renders
    // takes its larger weight.
    ivec3 plus = id_p >= 0 ? corners(id_p) : ivec3(-1);
    ivec3 minus = id_m >= 0 ? corners(id_m) : ivec3(-1);
    vec3 plus_w = share * geometry_weights(plus_b);
    vec3 minus_w = share * geometry_weights(minus_b);
#ifdef FLIP_WEIGHT_POWER
    // Sub-samples whose coverage flips weigh (epsilon scale)^power: their Delta is a
    // whole sub-sample's, large and rare once epsilon is small.
    float flip = pow(max(EPSILON_SCALE, 1e-6), FLIP_WEIGHT_POWER);
    plus_w *= flip;
    minus_w *= flip;
#endif
    for (int k = 0; k < 3; ++k) {
        if (plus[k] < 0) break;
        float weight = plus_w[k];
        for (int j = 0; j < 3; ++j) if (minus[j] == plus[k]) weight = max(weight, minus_w[j]);
        contribute(plus[k], weight, 0.0);
    }
    for (int k = 0; k < 3; ++k) {
        if (minus[k] < 0) break;
        if (any(equal(plus, ivec3(minus[k])))) continue;
        contribute(minus[k], minus_w[k], 0.0);
    }
}

void main() {
    ivec2 pixel = ivec2(gl_GlobalInvocationID.xy);
#ifdef DITHERED_SUMS
    dither_key = pcg_hash(uint(pixel.y * 65536 + pixel.x) ^ pcg_hash(uint(STEP_SEED)));
#endif
    PixelSample s;
    if (!covered_sample(pixel, s)) return;
    pixel_delta = s.loss_plus - s.loss_minus;
    // Every sub-sample of the pixel names its contributors; each takes its share.
    float share = 1.0 / float(SUPERSAMPLING * SUPERSAMPLING);
    for (int k = 0; k < SUPERSAMPLING * SUPERSAMPLING; ++k) {
        accumulate_subpixel(subpixel(pixel, k), share);
    }
    for (int k = 0; k < contributor_count; ++k) {
        accumulate(contributor_vertex[k], 0, pixel_delta, contributor_weight[k].x);
#ifndef GEOMETRY_ONLY  // (no vertex attribute is optimised: channel 1 has no reader)
        // A vertex only ever named across a coverage flip has no attribute weight.
        if (contributor_weight[k].y > 0.0) accumulate(contributor_vertex[k], 1, pixel_delta, contributor_weight[k].y);
#endif
    }
}
