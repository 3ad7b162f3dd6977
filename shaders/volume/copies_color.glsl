// P's copies of a volume's colours: theta+ and theta- as two RGBA32F 3D images (linear
// RGB in .rgb) the renders sample trilinearly. One invocation per voxel.
// Included by the core's perturb.comp as the set's copies.glsl (volume.ColorSet).
layout(rgba32f) uniform writeonly image3D color_plus;
layout(rgba32f) uniform writeonly image3D color_minus;
uniform int grid_size;

void write_copies(int invocation) {
    int voxel = invocation;
    if (voxel >= parameter_count / 3) return;
    vec4 plus = vec4(0.0, 0.0, 0.0, 1.0), minus = vec4(0.0, 0.0, 0.0, 1.0);
    for (int c = 0; c < 3; ++c) {
        int i = voxel * 3 + c;
        float value = updated_theta(i, voxel);
        float offset = perturbation(i);
        plus[c] = value + offset;
        minus[c] = value - offset;
    }
    ivec3 xyz = ivec3(voxel % grid_size, (voxel / grid_size) % grid_size, voxel / (grid_size * grid_size));
    imageStore(color_plus, xyz, plus);
    imageStore(color_minus, xyz, minus);
}
