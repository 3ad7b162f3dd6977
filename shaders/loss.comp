#version 430
// The loss pass, part of G: one invocation per pixel. Sums the pixel loss and Delta_p over
// the image into this step's loss-history slot (the global estimator's whole-image Delta,
// and the loss the host reports). Workgroup sums are reduced in shared memory first, in a
// fixed order, so the result is reproducible and only one atomic per workgroup is issued.
#include "common.glsl"
#include "targets.glsl"

layout(local_size_x = 16, local_size_y = 16) in;
layout(r32i) uniform iimageBuffer loss_history;
uniform int history_length;

shared float loss_sum[256];
shared float delta_sum[256];
shared float covered_sum[256];

void main() {
    ivec2 pixel = ivec2(gl_GlobalInvocationID.xy);
    uint lane = gl_LocalInvocationIndex;
    PixelSample s = read_pixel(pixel);
    loss_sum[lane] = 0.5 * (s.loss_plus + s.loss_minus);
    delta_sum[lane] = s.loss_plus - s.loss_minus;
    covered_sum[lane] = s.covered ? 1.0 : 0.0;
    barrier();
    for (uint width = 128u; width > 0u; width >>= 1u) {
        if (lane < width) {
            loss_sum[lane] += loss_sum[lane + width];
            delta_sum[lane] += delta_sum[lane + width];
            covered_sum[lane] += covered_sum[lane + width];
        }
        barrier();
    }
    if (lane == 0u) {
        int slot = HISTORY_SLOT * LOSS_SLOT_SIZE;
        ATOMIC_ADD_FIXED_WIDE(loss_history, slot, loss_sum[0]);
        ATOMIC_ADD_FIXED_WIDE(loss_history, slot + 2, delta_sum[0]);
        imageAtomicAdd(loss_history, slot + 4, int(covered_sum[0]));
        if (gl_WorkGroupID.xy == uvec2(0u)) {
            // The next step's slot: nothing reads it before the next loss pass writes it.
            int next = ((HISTORY_SLOT + 1) % history_length) * LOSS_SLOT_SIZE;
            for (int k = 0; k < LOSS_SLOT_SIZE; ++k) imageStore(loss_history, next + k, ivec4(0));
        }
    }
}
