// P's copies of a volume's densities: theta+ and theta- as two R32F 3D images the renders
// sample trilinearly, and theta itself as a third, from which G weighs each sample (the
// ray's transmittance). sigma = max(theta, 0) at the voxel centres: P also keeps theta in
// [0, inf) (the set's value range), so a clamp here only meets theta - eps near 0, and
// no voxel sits dead below 0 where neither copy would see its perturbation.
// Included by the core's perturb.comp as the set's copies.glsl (volume.DensitySet).
layout(r32f) uniform writeonly image3D density_plus;
layout(r32f) uniform writeonly image3D density_minus;
layout(r32f) uniform writeonly image3D density_theta;
uniform int grid_size;
// The sparsity term, as a proximal step after each update of the set: theta shrinks by
// this towards 0 (L1 on sigma >= 0), so a voxel keeps a density only where the gradient
// keeps asking for it; the estimate's noise otherwise leaves speckles in empty space.
uniform float density_shrink;

void write_copies(int invocation) {
    int voxel = invocation;
    if (voxel >= parameter_count) return;
    float value = updated_theta(voxel, voxel);
    if (density_shrink > 0.0 && APPLY_UPDATE != 0 && (STEP_INDEX - 1) % perturbation_period == perturbation_phase) {
        value = max(value - density_shrink * LEARNING_RATE_SCALE, 0.0);
        imageStore(theta, voxel, vec4(value));
    }
    float offset = perturbation(voxel);
    ivec3 xyz = ivec3(voxel % grid_size, (voxel / grid_size) % grid_size, voxel / (grid_size * grid_size));
    imageStore(density_plus, xyz, vec4(max(value + offset, 0.0)));
    imageStore(density_minus, xyz, vec4(max(value - offset, 0.0)));
    imageStore(density_theta, xyz, vec4(max(value, 0.0)));
}
