// P's copies of a disc set, in a layout the core's P does not know: one RGBA texel per
// (disc, side), interleaved [disc][theta+ | theta-], a disc's components in one store.
// Included by the core's perturb.comp as its set's copies.glsl (DiscSet.copy_writer).
layout(rgba32f) uniform writeonly imageBuffer perturbed;

void write_copies(int invocation) {
    int disc = invocation;
    if (disc >= parameter_count / components) return;
    vec4 plus = vec4(0.0, 0.0, 0.0, 1.0), minus = vec4(0.0, 0.0, 0.0, 1.0);
    for (int c = 0; c < components; ++c) {
        int i = disc * components + c;
        float value = updated_theta(i, disc);
        float offset = perturbation(i);
        plus[c] = value + offset;
        minus[c] = value - offset;
    }
    imageStore(perturbed, 2 * disc, plus);
    imageStore(perturbed, 2 * disc + 1, minus);
}
