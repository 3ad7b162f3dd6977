#version 430
// G for splats. Per pixel: Delta_p = l(C+, T) - l(C-, T) on the blended colours (the
// splats' colours are display values, as in 3DGS; the reference's linear albedo is
// encoded to sRGB to match), then, for each side, the K nearest contributors from the
// K-buffer in depth order with their blending weights alpha_k T_k recomputed from the
// footprints that side's render drew, and w Delta_p scattered to the union of both sides' contributors
// (w: the mean of the two sides' weights; 1 each with UNIT_WEIGHTS).
#include "common.glsl"
#include "view.glsl"
#include "splat.glsl"
#include "targets.glsl"
#include "loss_record.glsl"

layout(local_size_x = GRADIENT_GROUP, local_size_y = GRADIENT_GROUP) in;
layout(r32i) uniform iimageBuffer accumulator;   // [parity][splat][ACCUMULATOR_ENTRIES]
layout(r32i) uniform readonly iimageBuffer k_buffer;
layout(rgba32f) uniform readonly imageBuffer footprints;  // as the renders drew them (splats.vert)
uniform isamplerBuffer order;

vec3 srgb(vec3 c) {
    c = clamp(c, 0.0, 1.0);
    return mix(12.92 * c, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, greaterThan(c, vec3(0.0031308)));
}

void main() {
    ivec2 pixel = ivec2(gl_GlobalInvocationID.xy);
    PixelSample s;
    s.inside = all(lessThan(pixel, ivec2(viewport)));
    s.covered = false;
    s.loss_plus = 0.0;
    s.loss_minus = 0.0;
    int splats[2 * K_BUFFER];
    float weights[2 * K_BUFFER];
    int count = 0;
    if (s.inside) {
        vec3 target = srgb(texelFetch(target_color, ivec3(pixel, REFERENCE), 0).rgb);
        vec3 plus = texelFetch(target_color, ivec3(pixel, THETA_PLUS), 0).rgb;
        vec3 minus = texelFetch(target_color, ivec3(pixel, THETA_MINUS), 0).rgb;
        vec3 dp = plus - target, dm = minus - target;
        s.loss_plus = dot(dp, dp);
        s.loss_minus = dot(dm, dm);
        vec2 position = vec2(pixel) + 0.5;
        for (int side = 0; side < 2; ++side) {
            float transmittance = 1.0;
            for (int k = 0; k < K_BUFFER; ++k) {
                int index = k_index(pixel, side, k);
                int rank = imageLoad(k_buffer, index).x;
                if (rank == EMPTY_RANK) break;
                int splat = texelFetch(order, rank).x;
                // The footprint the render drew: a splat in the K-buffer was drawn this step.
                vec4 first = imageLoad(footprints, 2 * (side * splat_count + splat));
                vec4 second = imageLoad(footprints, 2 * (side * splat_count + splat) + 1);
                Footprint f;
                f.visible = true;
                f.centre = first.xy;
                f.conic = vec3(first.zw, second.x);
                f.radius = second.y;
                float alpha = splat_alpha(f, second.z, position);
#ifdef UNIT_WEIGHTS
                float weight = 0.5;
#else
                float weight = 0.5 * alpha * transmittance;
#endif
                transmittance *= 1.0 - alpha;
                int j = 0;
                while (j < count && splats[j] != splat) ++j;
                if (j == count) {
                    splats[count] = splat;
                    weights[count++] = weight;
                } else {
                    weights[j] += weight;
                }
            }
        }
        s.covered = count > 0;
    }
    if (records_loss != 0) record_loss(s);  // reached by every invocation: it has barriers
    float delta = s.loss_plus - s.loss_minus;
    for (int j = 0; j < count; ++j) {
        int base = (PARITY * splat_count + splats[j]) * ACCUMULATOR_ENTRIES;
        ATOMIC_ADD_FIXED(accumulator, base, to_fixed(weights[j] * delta));
        ATOMIC_ADD_FIXED(accumulator, base + 2, to_fixed(weights[j]));
    }
}
