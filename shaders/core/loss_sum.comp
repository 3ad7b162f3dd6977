#version 430
// The last pass of G: adds the workgroup partial sums that record_loss stored (the summed
// pixel loss and Delta_p of each workgroup) into this step's loss-history slot. One
// workgroup; every lane sums a fixed stride of partials in double, then a fixed-order tree
// in shared memory: the result does not depend on scheduling.
#include "common.glsl"

layout(local_size_x = 256) in;
layout(r32f) uniform readonly imageBuffer loss_partials;  // [workgroup][2]
layout(r32i) uniform iimageBuffer loss_history;            // [slot][LOSS_SLOT_SIZE]
uniform int partial_count;                                 // workgroups of the recording pass
uniform int history_length;                                // slots in loss_history

const uint LANES = 256u;
shared double loss_sum[LANES];
shared double delta_sum[LANES];

void main() {
    uint lane = gl_LocalInvocationIndex;
    double loss = 0.0, delta = 0.0;
    for (int k = int(lane); k < partial_count; k += int(LANES)) {
        loss += double(imageLoad(loss_partials, 2 * k).x);
        delta += double(imageLoad(loss_partials, 2 * k + 1).x);
    }
    loss_sum[lane] = loss;
    delta_sum[lane] = delta;
    barrier();
    for (uint width = LANES / 2u; width > 0u; width >>= 1u) {
        if (lane < width) {
            loss_sum[lane] += loss_sum[lane + width];
            delta_sum[lane] += delta_sum[lane + width];
        }
        barrier();
    }
    if (lane == 0u) {
        int slot = HISTORY_SLOT * LOSS_SLOT_SIZE;
        ivec2 loss_words = to_fixed_wide(loss_sum[0]), delta_words = to_fixed_wide(delta_sum[0]);
        imageStore(loss_history, slot, ivec4(loss_words.x));
        imageStore(loss_history, slot + 1, ivec4(loss_words.y));
        imageStore(loss_history, slot + 2, ivec4(delta_words.x));
        imageStore(loss_history, slot + 3, ivec4(delta_words.y));
        if (isnan(loss_sum[0]) || isinf(loss_sum[0]) || isnan(delta_sum[0]) || isinf(delta_sum[0])) {
            imageStore(loss_history, slot + DIVERGENCE_ENTRY, ivec4(2));
        }
        // The next step's flag starts clear (its P may set it before this pass runs again).
        imageStore(loss_history, ((HISTORY_SLOT + 1) % history_length) * LOSS_SLOT_SIZE + DIVERGENCE_ENTRY, ivec4(0));
    }
}
