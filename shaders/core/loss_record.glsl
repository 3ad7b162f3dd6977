// Recording a pixel's loss for this step: the summed pixel loss and Delta_p. Each
// workgroup (64 invocations) sums its pixels in shared memory in a fixed order and stores
// its two partial sums; loss_sum.comp then adds the partials in a fixed order into the
// step's loss-history slot. No atomics: one atomic per workgroup on the one slot still
// serialised (37 ms a step at 1024^2 on an H100, against 0.2 ms without), and the fixed
// order keeps runs bit-reproducible. Included by loss.comp and, so the per-pixel estimator
// reads its targets once, by the first domain's gradient pass; record_loss must be reached
// by every invocation of the workgroup (it has barriers).
layout(r32f) uniform writeonly imageBuffer loss_partials;  // [workgroup][2]

const uint LOSS_LANES = 64u;  // = local size of the passes that include this file
shared float loss_partial[LOSS_LANES];
shared float delta_partial[LOSS_LANES];

const uint LOSS_ROWS = 8u;  // lanes summed in two levels: 8 rows of 8, then the rows
shared float loss_row[LOSS_ROWS];
shared float delta_row[LOSS_ROWS];

// Two barriers rather than a tree's seven: llvmpipe runs a barrier by switching between
// every invocation of the workgroup, and the tree cost a CPU step ~4 ms at 128^2.
void record_loss(PixelSample s) {
    uint lane = gl_LocalInvocationIndex;
    loss_partial[lane] = s.inside ? 0.5 * (s.loss_plus + s.loss_minus) : 0.0;
    delta_partial[lane] = s.inside ? s.loss_plus - s.loss_minus : 0.0;
    barrier();
    if (lane < LOSS_ROWS) {
        float loss = 0.0, delta = 0.0;
        for (uint k = 0u; k < LOSS_LANES / LOSS_ROWS; ++k) {
            loss += loss_partial[lane * (LOSS_LANES / LOSS_ROWS) + k];
            delta += delta_partial[lane * (LOSS_LANES / LOSS_ROWS) + k];
        }
        loss_row[lane] = loss;
        delta_row[lane] = delta;
    }
    barrier();
    if (lane == 0u) {
        float loss = 0.0, delta = 0.0;
        for (uint k = 0u; k < LOSS_ROWS; ++k) {
            loss += loss_row[k];
            delta += delta_row[k];
        }
        int group = int(gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x);
        imageStore(loss_partials, 2 * group, vec4(loss));
        imageStore(loss_partials, 2 * group + 1, vec4(delta));
    }
}

// For the gradient passes: the pixel's sample, after recording its loss when this pass is
// the one that records it (``records_loss``); false when neither perturbed render covers
// the pixel, so it names no contributors.
uniform int records_loss;

#ifdef CORE_DELTA
// Optimizer(delta_pass=True): the core's pass (loss.comp) computed Delta_p and coverage
// and recorded the loss; here they are read back (loss_plus carries Delta_p).
layout(rg32f) uniform readonly image2D pixel_deltas;

bool covered_sample(ivec2 pixel, out PixelSample s) {
    s.inside = all(lessThan(pixel, imageSize(pixel_deltas)));
    vec2 d = s.inside ? imageLoad(pixel_deltas, pixel).xy : vec2(0.0);
    s.covered = d.y > 0.5;
    s.loss_plus = d.x;
    s.loss_minus = 0.0;
    return s.covered;
}
#else
bool covered_sample(ivec2 pixel, out PixelSample s) {
    s = read_pixel(pixel);
    if (records_loss != 0) record_loss(s);  // reached by every invocation: it has barriers
    return s.covered;
}
#endif
