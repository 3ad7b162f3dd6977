#version 430
// The loss pass of G for the global estimator (the per-pixel estimator records the loss
// in its first gradient pass instead): one invocation per pixel, summing the pixel loss
// and Delta_p over the image into this step's loss-history slot. P then applies the
// whole image's Delta to every parameter.
#include "common.glsl"
#include "targets.glsl"
#include "loss_record.glsl"

layout(local_size_x = GRADIENT_GROUP, local_size_y = GRADIENT_GROUP) in;

#ifdef WRITE_PIXEL_DELTA
// Optimizer(delta_pass=True): (Delta_p, covered) per pixel, for every domain's G.
layout(rg32f) uniform writeonly image2D pixel_deltas;
#endif

void main() {
    ivec2 pixel = ivec2(gl_GlobalInvocationID.xy);
    PixelSample s = read_pixel(pixel);
    record_loss(s);
#ifdef WRITE_PIXEL_DELTA
    if (s.inside) imageStore(pixel_deltas, pixel, vec4(s.loss_plus - s.loss_minus, s.covered ? 1.0 : 0.0, 0.0, 0.0));
#endif
}
