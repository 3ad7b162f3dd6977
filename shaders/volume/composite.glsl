// Compositing a ray through a field: the includer defines ``vec4 field(vec3 x)`` (density
// sigma, linear RGB) before including this (after march.glsl). Returns (C, 1 - T_end),
// C premultiplied over a black background.
vec4 march(Ray ray, float jitter) {
    vec3 color = vec3(0.0);
    float transmittance = 1.0;
    int count = sample_count(ray, jitter);
    for (int i = 0; i < count; ++i) {
        vec4 value = field(sample_position(ray, jitter, i));
        float alpha = 1.0 - exp(-value.x * STEP);
        color += transmittance * alpha * value.yzw;
        transmittance *= 1.0 - alpha;
        if (transmittance < TRANSMITTANCE_CUTOFF) break;
    }
    return vec4(color, 1.0 - transmittance);
}
