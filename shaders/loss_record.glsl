// Recording a pixel's loss into the step's loss-history slot (see common.glsl): the summed
// pixel loss and Delta_p. Each workgroup (64 invocations) sums its pixels in shared memory
// in a fixed order, then adds its total with one fixed-point atomic: per-pixel atomics on
// the one slot serialise on a GPU (88 ms a step at 1024^2 on an H100), and the fixed
// order and integer sums keep runs bit-reproducible. Included by loss.comp and, so the
// per-pixel estimator reads its targets once, by the first domain's gradient pass;
// record_loss must be reached by every invocation of the workgroup (it has barriers).
layout(r32i) uniform iimageBuffer loss_history;
uniform int history_length;

const uint LOSS_LANES = 64u;  // = local size of the passes that include this file
shared float loss_partial[LOSS_LANES];
shared float delta_partial[LOSS_LANES];

void record_loss(PixelSample s) {
    if (gl_GlobalInvocationID.xy == uvec2(0u)) {
        // The next step's slot: nothing reads it before the next step writes it.
        int next = ((HISTORY_SLOT + 1) % history_length) * LOSS_SLOT_SIZE;
        for (int k = 0; k < LOSS_SLOT_SIZE; ++k) imageStore(loss_history, next + k, ivec4(0));
    }
    uint lane = gl_LocalInvocationIndex;
    loss_partial[lane] = s.inside ? 0.5 * (s.loss_plus + s.loss_minus) : 0.0;
    delta_partial[lane] = s.inside ? s.loss_plus - s.loss_minus : 0.0;
    barrier();
    for (uint width = LOSS_LANES / 2u; width > 0u; width >>= 1u) {
        if (lane < width) {
            loss_partial[lane] += loss_partial[lane + width];
            delta_partial[lane] += delta_partial[lane + width];
        }
        barrier();
    }
    if (lane == 0u) {
        int slot = HISTORY_SLOT * LOSS_SLOT_SIZE;
        ATOMIC_ADD_FIXED_WIDE(loss_history, slot, loss_partial[0]);
        ATOMIC_ADD_FIXED_WIDE(loss_history, slot + 2, delta_partial[0]);
    }
}

// For the gradient passes: the pixel's sample, after recording its loss when this pass is
// the one that records it (``records_loss``); false when neither perturbed render covers
// the pixel, so it names no contributors.
uniform int records_loss;

bool covered_sample(ivec2 pixel, out PixelSample s) {
    if (records_loss != 0) {
        s = read_pixel(pixel);
        record_loss(s);  // reached by every invocation: it has barriers
        return pixel_covered(pixel);
    }
    if (!pixel_covered(pixel)) return false;
    s = read_pixel(pixel);
    return true;
}
