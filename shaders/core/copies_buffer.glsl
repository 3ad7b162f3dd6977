// P's copies as one buffer [theta+ x N | theta- x N] (vertex attributes: the draw pulls
// them by index). One invocation per parameter.
layout(r32f) uniform writeonly imageBuffer perturbed;

void write_copies(int invocation) {
    int i = invocation;
    if (i >= parameter_count) return;
    float value = updated_theta(i, i / components);
    float offset = perturbation(i);
    imageStore(perturbed, i, vec4(value + offset));
    imageStore(perturbed, parameter_count + i, vec4(value - offset));
}
