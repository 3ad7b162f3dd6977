#version 430
// G for a volume: the ray of a pixel does not depend on theta, so G re-marches it (the
// renders' rays and samples, march.glsl) and gives the pixel's Delta_p to the 8 trilinear
// voxels of each sample, weighted by how much the sample shows in the pixel:
//   colour channel:  the compositing weight T_i (1 - exp(-sigma_i STEP)) x trilinear weight
//                    (exactly dC/dc_voxel's share);
//   density channel: the transmittance T_i x trilinear weight (a density changes the
//                    sample and everything behind it).
// sigma from theta itself (P's third copy). The march stops where T < 1e-3, as the renders.
// Consecutive samples in one trilinear cell (4 per cell at 32^3) are summed before the
// atomics, which are flushed when the ray leaves the cell. (Keeping the 4 corners two
// cells share across the move halves the atomics, but ran 1.7-3x slower on llvmpipe.)
// Density and colour accumulate into two domains (one channel each) so that neither
// accumulator passes the buffer-texture limit (2^27 texels on NVIDIA) at 256^3.
// UNIT_WEIGHTS (small grids, up to UNIT_VOXELS voxels): every voxel the pixel's samples
// name counts 1, once per pixel, so the un-normalised sum is SPEC's gradient check's.
#include "common.glsl"
#include "targets.glsl"
#include "loss_record.glsl"
#include "march.glsl"

layout(local_size_x = GRADIENT_GROUP, local_size_y = GRADIENT_GROUP) in;
uniform mat4 model_view_projection;
uniform sampler3D density_theta;                        // max(theta, 0) at voxel centres
layout(r32i) uniform iimageBuffer density_accumulator;  // [parity][voxel][ACCUMULATOR_ENTRIES]
layout(r32i) uniform iimageBuffer color_accumulator;
uniform int grid_size;
// Which channels this step perturbed: a set is perturbed on steps s with s % turn_period
// == its phase (-1: not optimised), as P decides; the other channel's sums would be
// thrown away by its P, so G does not make them (half the atomics when they take turns).
uniform int turn_period;
uniform int density_phase;
uniform int color_phase;

#ifndef DELTA_SCALE
#define DELTA_SCALE 1.0
#endif
// A sparse perturbation (volume.sparse_perturbation): only the voxels perturbed in the step
// are summed (P gives the others no update).
#ifndef DENSITY_PERTURBED
#define DENSITY_PERTURBED(i, seed) true
#endif
#ifndef COLOR_PERTURBED
#define COLOR_PERTURBED(i, seed) true
#endif

// A voxel's summed weight in a pixel below this is left out (a missing contributor loses
// a little signal but biases nothing; SPEC.md).
const float MIN_WEIGHT = 1e-4;

int voxel_count() { return grid_size * grid_size * grid_size; }

// Adds (w Delta, w) to a voxel's entries of one accumulator half.
bool density_on = true, color_on = true;

void scatter(int voxel, float delta, float density_weight, float color_weight) {
    int base = (PARITY * voxel_count() + voxel) * ACCUMULATOR_ENTRIES;
    if (density_on && density_weight > MIN_WEIGHT && DENSITY_PERTURBED(voxel, STEP_SEED)) {
        ATOMIC_ADD_FIXED(density_accumulator, base, to_fixed(delta * density_weight));
        ATOMIC_ADD_FIXED(density_accumulator, base + 2, to_fixed(density_weight));
    }
    if (color_on && color_weight > MIN_WEIGHT && COLOR_PERTURBED(voxel * 3, STEP_SEED)) {
        ATOMIC_ADD_FIXED(color_accumulator, base, to_fixed(delta * color_weight));
        ATOMIC_ADD_FIXED(color_accumulator, base + 2, to_fixed(color_weight));
    }
}

// The 8 voxels of trilinear cell ``cell`` (its lowest corner), clamped to the grid as the
// sampler's clamp-to-edge reads them.
int corner_voxel(ivec3 cell, int k) {
    ivec3 v = clamp(cell + ivec3(k & 1, (k >> 1) & 1, k >> 2), ivec3(0), ivec3(grid_size - 1));
    return v.x + grid_size * (v.y + grid_size * v.z);
}

void flush(ivec3 cell, float delta, inout float density_weights[8], inout float color_weights[8]) {
    for (int k = 0; k < 8; ++k) {
        if (density_weights[k] > 0.0 || color_weights[k] > 0.0) {
            scatter(corner_voxel(cell, k), delta, density_weights[k], color_weights[k]);
        }
        density_weights[k] = 0.0;
        color_weights[k] = 0.0;
    }
}

void main() {
    ivec2 pixel = ivec2(gl_GlobalInvocationID.xy);
    PixelSample s;
    if (!covered_sample(pixel, s)) return;  // the core's: records the loss, gives Delta_p
    // Adam's step does not depend on the gradient's scale; the scale keeps small
    // w Delta_p terms well above the fixed point's 2^-24.
    float delta = DELTA_SCALE * (s.loss_plus - s.loss_minus);
    density_on = STEP_INDEX % turn_period == density_phase;
    color_on = STEP_INDEX % turn_period == color_phase;
    Ray ray;
    vec2 size = vec2(textureSize(target_color, 0).xy);
    if (!pixel_ray(vec2(pixel) + 0.5, size, model_view_projection, camera_position.xyz, ray)) return;
    float jitter = ray_jitter(pixel);
    int count = sample_count(ray, jitter);
    float density_weights[8], color_weights[8];
    for (int k = 0; k < 8; ++k) {
        density_weights[k] = 0.0;
        color_weights[k] = 0.0;
    }
#ifdef UNIT_WEIGHTS
    uint named[UNIT_VOXELS / 32];  // the union of the voxels the samples name
    for (int w = 0; w < UNIT_VOXELS / 32; ++w) named[w] = 0u;
#endif
    ivec3 cell = ivec3(-1);
    float transmittance = 1.0;
    float n = float(grid_size);
    for (int i = 0; i < count; ++i) {
        vec3 x = sample_position(ray, jitter, i);
        vec3 g = (x * 0.5 + 0.5) * n - 0.5;  // voxel coordinates: centres at integers
        ivec3 base = ivec3(floor(g));
        vec3 f = g - vec3(base);
#ifdef UNIT_WEIGHTS
        for (int k = 0; k < 8; ++k) {
            int voxel = corner_voxel(base, k);
            named[voxel >> 5] |= 1u << uint(voxel & 31);
        }
        float alpha_unit = 1.0 - exp(-texture(density_theta, x * 0.5 + 0.5).r * STEP);
        transmittance *= 1.0 - alpha_unit;
        if (transmittance < TRANSMITTANCE_CUTOFF) break;
        continue;
#endif
        if (base != cell) {
            if (i > 0) flush(cell, delta, density_weights, color_weights);
            cell = base;
        }
        float sigma = texture(density_theta, x * 0.5 + 0.5).r;
        float alpha = 1.0 - exp(-sigma * STEP);
        float density_weight = transmittance, color_weight = transmittance * alpha;
        for (int k = 0; k < 8; ++k) {
            vec3 corner = vec3(k & 1, (k >> 1) & 1, k >> 2);
            vec3 t = mix(1.0 - f, f, corner);
            float trilinear = t.x * t.y * t.z;
            density_weights[k] += density_weight * trilinear;
            color_weights[k] += color_weight * trilinear;
        }
        transmittance *= 1.0 - alpha;
        if (transmittance < TRANSMITTANCE_CUTOFF) break;
    }
#ifdef UNIT_WEIGHTS
    for (int voxel = 0; voxel < voxel_count(); ++voxel) {
        if ((named[voxel >> 5] & (1u << uint(voxel & 31))) != 0u) scatter(voxel, delta, 1.0, 1.0);
    }
#else
    flush(cell, delta, density_weights, color_weights);
#endif
}
