#version 430
// G for texture maps: one invocation per pixel. The contributors of a (sub-)sample are the
// 4 texels a bilinear fetch at its UV reads, weighted by their bilinear weights, from the
// theta+ and the theta- UV targets (their union; a texel named by both takes its larger
// weight). Only samples both renders give to the same triangle count: where coverage
// flips, Delta is the geometry's, and it would drown the texels' few 1/255.
// Every channel of a texel shares its contributor set: G accumulates sum_p w_p Delta_p
// and sum_p w_p per texel; P applies delta_i / (2 eps) per channel.
#include "common.glsl"
#include "targets.glsl"
#include "uv_plane.glsl"
#include "loss_record.glsl"

layout(local_size_x = GRADIENT_GROUP, local_size_y = GRADIENT_GROUP) in;
layout(r32i) uniform iimageBuffer accumulator; // [parity][texel][ACCUMULATOR_ENTRIES]
uniform int element_count;
uniform int texture_width;
uniform int texture_height;
uniform int bilinear_weights;                  // 0: every named texel weighs 1
uniform int mip_aware;                         // 1: minified samples name their mip footprint
uniform int mip_levels;                        // levels the sampler may read

void accumulate(int texel, float delta, float weight) {
    int base = (PARITY * element_count + texel) * ACCUMULATOR_ENTRIES;
    ATOMIC_ADD_FIXED(accumulator, base, to_fixed(weight * delta));
    ATOMIC_ADD_FIXED(accumulator, base + 2, to_fixed(weight));
}

// A pixel's sub-samples read the same few texels over and over: their weights are summed
// here first, so each texel costs one set of atomics per pixel.
const int PIXEL_CONTRIBUTORS = 16;
int contributor_texel[PIXEL_CONTRIBUTORS];
float contributor_weight[PIXEL_CONTRIBUTORS];
int contributor_count = 0;
float pixel_delta = 0.0;

void contribute(int texel, float weight) {
    if (weight <= 0.0) return;
    for (int k = 0; k < contributor_count; ++k) {
        if (contributor_texel[k] == texel) { contributor_weight[k] += weight; return; }
    }
    if (contributor_count < PIXEL_CONTRIBUTORS) {
        contributor_texel[contributor_count] = texel;
        contributor_weight[contributor_count] = weight;
        ++contributor_count;
        return;
    }
    accumulate(texel, pixel_delta, weight);  // list full: straight to the atomics
}

// The most level-0 texels one level-L texel may spread onto (L <= MAX_SPREAD_LEVEL).
const int MAX_SPREAD_LEVEL = 3;

// The mip level a trilinear sampler reads most for a sample of this UV footprint (the
// nearer of the two it blends), capped so one texel spreads onto at most 8x8.
int sample_level(float footprint) {
    if (mip_aware == 0) return 0;
    float lod = log2(max(footprint * float(max(texture_width, texture_height)), 1e-8));
    return clamp(int(floor(lod + 0.5)), 0, min(mip_levels - 1, MAX_SPREAD_LEVEL));
}

// The 4 texels (repeat wrapping) and bilinear weights of a sample at uv, at level 0.
void bilinear(vec2 uv, out ivec4 texels, out vec4 weights) {
    vec2 size = vec2(texture_width, texture_height);
    vec2 t = uv * size - 0.5;
    vec2 base = floor(t);
    vec2 f = t - base;
    ivec2 lo = ivec2(mod(base, size));
    ivec2 hi = ivec2(mod(base + 1.0, size));
    texels = ivec4(lo.y * texture_width + lo.x, lo.y * texture_width + hi.x,
                   hi.y * texture_width + lo.x, hi.y * texture_width + hi.x);
    weights = bilinear_weights != 0
        ? vec4((1.0 - f.x) * (1.0 - f.y), f.x * (1.0 - f.y), (1.0 - f.x) * f.y, f.x * f.y)
        : vec4(1.0);
}

// A minified sample reads level L: its 4 bilinear texels there, each spread evenly back
// onto the 2^L x 2^L level-0 texels it averages.
void contribute_at_level(vec2 uv, int level, float weight) {
    int width = max(1, texture_width >> level), height = max(1, texture_height >> level);
    vec2 t = uv * vec2(width, height) - 0.5;
    vec2 base = floor(t);
    vec2 f = t - base;
    vec4 weights = bilinear_weights != 0
        ? vec4((1.0 - f.x) * (1.0 - f.y), f.x * (1.0 - f.y), (1.0 - f.x) * f.y, f.x * f.y) : vec4(1.0);
    int span = 1 << level;
    float spread = weight / float(span * span);
    for (int k = 0; k < 4; ++k) {
        ivec2 coarse = ivec2(mod(base + vec2(k & 1, k >> 1), vec2(width, height)));
        for (int dy = 0; dy < span; ++dy) {
            for (int dx = 0; dx < span; ++dx) {
                ivec2 fine = min(coarse * span + ivec2(dx, dy), ivec2(texture_width, texture_height) - 1);
                contribute(fine.y * texture_width + fine.x, spread * weights[k]);
            }
        }
    }
}

void accumulate_subpixel(ivec2 q, float share) {
    vec4 plus_id = sample_at(THETA_PLUS, q);
    int id_p = decode_id(plus_id.x);
    int id_m = decode_id(sample_at(THETA_MINUS, q).x);
    if (id_p < 0 || id_p != id_m) return;
    int level = sample_level(plus_id.y);
    if (level > 0) {
        // Minified: the level-L footprints of both renders, each with half the share.
        contribute_at_level(uv_at(THETA_PLUS, q).xy, level, 0.5 * share);
        contribute_at_level(uv_at(THETA_MINUS, q).xy, level, 0.5 * share);
        return;
    }
    ivec4 plus_texels, minus_texels;
    vec4 plus_weights, minus_weights;
    bilinear(uv_at(THETA_PLUS, q).xy, plus_texels, plus_weights);
    bilinear(uv_at(THETA_MINUS, q).xy, minus_texels, minus_weights);
    for (int k = 0; k < 4; ++k) {
        float weight = plus_weights[k];
        for (int j = 0; j < 4; ++j) if (minus_texels[j] == plus_texels[k]) weight = max(weight, minus_weights[j]);
        contribute(plus_texels[k], share * weight);
    }
    for (int k = 0; k < 4; ++k) {
        if (any(equal(plus_texels, ivec4(minus_texels[k])))) continue;
        contribute(minus_texels[k], share * minus_weights[k]);
    }
}

void main() {
    ivec2 pixel = ivec2(gl_GlobalInvocationID.xy);
    PixelSample s;
    if (!covered_sample(pixel, s)) return;
    pixel_delta = s.loss_plus - s.loss_minus;
    float share = 1.0 / float(SUPERSAMPLING * SUPERSAMPLING);
    for (int k = 0; k < SUPERSAMPLING * SUPERSAMPLING; ++k) {
        accumulate_subpixel(subpixel(pixel, k), share);
    }
    for (int k = 0; k < contributor_count; ++k) {
        accumulate(contributor_texel[k], pixel_delta, contributor_weight[k]);
    }
}
