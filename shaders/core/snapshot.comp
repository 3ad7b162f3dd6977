#version 430
// A view as a screen shows it, for scoring on the host (optimizer/sge.py: snapshot_srgb8):
// theta's page and the reference's page of the colour target box-filtered FACTOR x FACTOR
// in linear colour, encoded sRGB and rounded to 8 bits (the same steps as numpy's
// optimizer.images.linear_to_srgb8 of sge._box_filter), and whether any of the block's
// sub-samples was drawn (its ID > 0). Only these come back, not the float targets.
layout(local_size_x = 16, local_size_y = 16) in;

uniform sampler2DArray target_color;   // .rgb: linear colour
uniform sampler2DArray target_sample;  // .x: float(ID), 0 = background
uniform ivec4 snapshot_pages;          // theta's page, the reference's page, FACTOR
layout(rgba32f) uniform writeonly image2D snapshot;  // (2W x H): theta left, reference right;
                                                     // rgb in 0..255, a: covered

vec3 to_srgb8(vec3 linear) {
    vec3 c = clamp(linear, 0.0, 1.0);
    vec3 encoded = mix(1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, 12.92 * c, lessThanEqual(c, vec3(0.0031308)));
    return round(encoded * 255.0);
}

void main() {
    ivec2 pixel = ivec2(gl_GlobalInvocationID.xy);
    ivec2 size = imageSize(snapshot) / ivec2(2, 1);
    if (any(greaterThanEqual(pixel, size))) {
        return;
    }
    int factor = snapshot_pages.z;
    for (int side = 0; side < 2; ++side) {
        int page = snapshot_pages[side];
        vec3 total = vec3(0.0);
        bool covered = false;
        for (int j = 0; j < factor; ++j) {
            for (int i = 0; i < factor; ++i) {
                ivec3 sub = ivec3(pixel * factor + ivec2(i, j), page);
                total += texelFetch(target_color, sub, 0).rgb;
                covered = covered || texelFetch(target_sample, sub, 0).x > 0.5;
            }
        }
        vec3 color = to_srgb8(total / float(factor * factor));
        imageStore(snapshot, pixel + ivec2(side * size.x, 0), vec4(color, covered ? 1.0 : 0.0));
    }
}
