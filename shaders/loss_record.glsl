// Recording a pixel's loss into the step's loss-history slot (see common.glsl): the summed
// pixel loss and Delta_p, as exact fixed-point integers, so the sums are reproducible.
// Per-pixel atomics rather than a shared-memory reduction: llvmpipe runs workgroup
// barriers slowly, and integer sums need no ordering. Included by loss.comp and, so the
// per-pixel estimator reads its targets once, by the first domain's gradient pass.
layout(r32i) uniform iimageBuffer loss_history;
uniform int history_length;

void record_loss(PixelSample s) {
    if (gl_GlobalInvocationID.xy == uvec2(0u)) {
        // The next step's slot: nothing reads it before the next step writes it.
        int next = ((HISTORY_SLOT + 1) % history_length) * LOSS_SLOT_SIZE;
        for (int k = 0; k < LOSS_SLOT_SIZE; ++k) imageStore(loss_history, next + k, ivec4(0));
    }
    if (!s.inside) return;
    int slot = HISTORY_SLOT * LOSS_SLOT_SIZE;
    ATOMIC_ADD_FIXED(loss_history, slot, to_fixed(0.5 * (s.loss_plus + s.loss_minus)));
    ATOMIC_ADD_FIXED(loss_history, slot + 2, to_fixed(s.loss_plus - s.loss_minus));
}
