#version 430
// G for discs: the contributors of a pixel are the discs either perturbed render drew in
// its sub-samples (read from the kind's own plane), each given the pixel's Delta_p once.
#include "common.glsl"
#include "targets.glsl"
#include "loss_record.glsl"

layout(local_size_x = GRADIENT_GROUP, local_size_y = GRADIENT_GROUP) in;
uniform sampler2DArray target_disc;             // the kind's plane: .x disc + 1
layout(r32i) uniform iimageBuffer accumulator;  // [parity][disc][ACCUMULATOR_ENTRIES]
uniform int element_count;

const int MAX_CONTRIBUTORS = 2 * SUPERSAMPLING * SUPERSAMPLING;

void main() {
    ivec2 pixel = ivec2(gl_GlobalInvocationID.xy);
    PixelSample s;
    if (!covered_sample(pixel, s)) return;  // the core's: records the loss, gives Delta_p
    float delta = s.loss_plus - s.loss_minus;
    int discs[MAX_CONTRIBUTORS];
    int count = 0;
    for (int k = 0; k < SUPERSAMPLING * SUPERSAMPLING; ++k) {
        ivec2 q = subpixel(pixel, k);
        for (int render = THETA_PLUS; render <= THETA_MINUS; ++render) {
            if (sample_at(render, q).x < 0.5) continue;
            int disc = decode_id(texelFetch(target_disc, ivec3(q, render), 0).x);
            bool seen = false;
            for (int j = 0; j < count; ++j) seen = seen || discs[j] == disc;
            if (!seen) discs[count++] = disc;
        }
    }
    for (int j = 0; j < count; ++j) {
        int base = (PARITY * element_count + discs[j]) * ACCUMULATOR_ENTRIES;
        ATOMIC_ADD_FIXED(accumulator, base, to_fixed(delta));
        ATOMIC_ADD_FIXED(accumulator, base + 2, to_fixed(1.0));
    }
}
