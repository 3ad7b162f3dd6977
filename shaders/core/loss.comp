#version 430
// The loss pass of G for the global estimator (the per-pixel estimator records the loss
// in its first gradient pass instead): one invocation per pixel, summing the pixel loss
// and Delta_p over the image into this step's loss-history slot. P then applies the
// whole image's Delta to every parameter.
#include "common.glsl"
#include "targets.glsl"
#include "loss_record.glsl"

layout(local_size_x = GRADIENT_GROUP, local_size_y = GRADIENT_GROUP) in;

void main() {
    record_loss(read_pixel(ivec2(gl_GlobalInvocationID.xy)));
}
