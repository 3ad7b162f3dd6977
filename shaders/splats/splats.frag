#version 430
// A splat's fragment: alpha = opacity * G (3DGS), blended front to back ("under":
// C += (1 - A) alpha c, A += (1 - A) alpha, the draw's ColorBlendAttrib), and its rank
// inserted into the pixel's K-buffer with image atomics (attachments blend, so G cannot
// get the contributors from them). atomicMin insertion keeps the K smallest ranks sorted
// whatever order fragments arrive in. BACK_TO_FRONT (game/splats.py): no K-buffer, and
// the same premultiplied colour blended "over".
#include "splat.glsl"

#ifndef BACK_TO_FRONT
layout(r32i) uniform coherent iimageBuffer k_buffer;
#endif
uniform int side;

flat in int rank;
flat in vec3 conic;
flat in vec2 centre;
flat in float radius;
flat in vec4 color_opacity;

layout(location = 0) out vec4 out_color;

void main() {
    Footprint f;
    f.visible = true;
    f.centre = centre;
    f.conic = conic;
    f.radius = radius;
    float alpha = splat_alpha(f, color_opacity.a, gl_FragCoord.xy);
    if (alpha == 0.0) discard;
#ifndef BACK_TO_FRONT
    ivec2 pixel = ivec2(gl_FragCoord.xy);
    int value = rank;
    // Entries only fall during a render, so a rank behind the pixel's K-th can never get
    // in: one load instead of K atomics for most fragments (draws come front to back).
    if (imageLoad(k_buffer, k_index(pixel, side, K_BUFFER - 1)).x < value) value = EMPTY_RANK;
    for (int k = 0; k < K_BUFFER && value != EMPTY_RANK; ++k) {
        int previous = imageAtomicMin(k_buffer, k_index(pixel, side, k), value);
        if (previous == EMPTY_RANK) break;
        value = max(previous, value);
    }
#endif
    out_color = vec4(color_opacity.rgb * alpha, alpha);
}
