// P's copies as two 2D images the draw samples (texture maps): theta+ in perturbed_plus,
// theta- in perturbed_minus, a texel's up to 4 components in one store each. One
// invocation per texel.
layout(rgba32f) uniform writeonly image2D perturbed_plus;
layout(rgba32f) uniform writeonly image2D perturbed_minus;

void write_copies(int invocation) {
    int texel = invocation;
    if (texel >= parameter_count / components) return;
    vec4 plus = vec4(0.0, 0.0, 0.0, 1.0), minus = vec4(0.0, 0.0, 0.0, 1.0);
    for (int c = 0; c < components; ++c) {
        int i = texel * components + c;
        float value = updated_theta(i, texel);
        float offset = perturbation(i);
        plus[c] = value + offset;
        minus[c] = value - offset;
    }
    ivec2 xy = ivec2(texel % imageSize(perturbed_plus).x, texel / imageSize(perturbed_plus).x);
    imageStore(perturbed_plus, xy, plus);
    imageStore(perturbed_minus, xy, minus);
}
