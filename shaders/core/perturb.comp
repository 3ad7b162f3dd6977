#version 430
// P, the perturb pass: one invocation per parameter of one parameter set (per texel for
// texture kinds, PERTURBED_TEXTURE).
// 1. Finish the previous step: g_i = delta_i * sum_p w_p Delta_p / (2 eps n) over the
//    pixels in which element(i) was a contributor, n = sum_p w_p (per-pixel estimator;
//    w_p = 1 or the contributor's weight in the pixel; n = 1 with SUMMED_ESTIMATE, the
//    weighted sum rather than the mean: Settings.normalised), or the whole image's Delta applied
//    to every parameter (global estimator); then an Adam update of theta_i.
// 2. Clear the accumulator half the coming G pass writes (the domain's owner set only).
// 3. Write theta+ = theta + eps delta and theta- = theta - eps delta for the new seed into
//    the buffer or textures the renderer reads.
#include "common.glsl"

layout(local_size_x = PERTURB_GROUP) in;

layout(r32f) uniform imageBuffer theta;               // per parameter
layout(r32f) uniform imageBuffer first_moment;        // Adam's m
layout(r32f) uniform imageBuffer second_moment;       // Adam's v
layout(r32i) uniform iimageBuffer accumulator;        // [parity][element][channel][ACCUMULATOR_ENTRIES]
layout(r32i) uniform iimageBuffer loss_history;       // [slot][LOSS_SLOT_SIZE]

uniform int parameter_count;
uniform int components;          // parameters per contributor element
uniform int element_count;       // elements in the accumulator domain
uniform int channels;            // accumulator channels per element
uniform int channel;             // the channel this set reads
uniform int set_id;              // keeps the delta_i of different sets independent
uniform int clears_accumulator;  // 1 for the one set that clears the domain's accumulator
uniform float epsilon;
uniform float learning_rate;
uniform vec2 value_range;        // theta is clamped to it after each update
uniform vec3 adam;               // beta1, beta2, epsilon
// Sets are perturbed in turns: this set on steps s with s % period == phase, and left at
// theta on the others. A vertex move flips whole pixels, whose Delta would drown the
// few-1/255 signal of a color or texel perturbed in the same step (Optimizer docs).
uniform int perturbation_period;
uniform int perturbation_phase;

// 1 - beta^t in double precision (float pow is off by ~1e-4 relative for beta2^t near 1).
float bias_correction(float beta, int t) {
    double power = 1.0lf, base = double(beta);
    for (int e = t; e > 0; e >>= 1) {
        if ((e & 1) != 0) power *= base;
        base *= base;
    }
    return float(1.0lf - power);
}

// The index whose hash gives parameter i its sign delta_i at a seed: its own by default. A
// kind may define PERTURBATION_INDEX(i, seed) (ParameterSet.perturb_defines) so that
// several parameters share one sign (a volume's neighbouring voxels: a block-wise
// perturbation, a smoothed gradient).
#ifndef PERTURBATION_INDEX
#define PERTURBATION_INDEX(i, seed) (i)
#endif
// Parameter i's delta_i at a seed: +-1 from the hash of its index by default. A kind may
// define PERTURBATION_SIGN(i, seed) that also gives 0 (a sparse perturbation: only some
// parameters perturbed per step, less crosstalk in each pixel's Delta_p); a parameter
// with delta_i = 0 is left unperturbed and gets no update from that step (Adam skipped).
#ifndef PERTURBATION_SIGN
#define PERTURBATION_SIGN(i, seed) perturbation_sign(uint(PERTURBATION_INDEX(i, seed)), uint(set_id), uint(seed))
#endif

// Flags a non-finite parameter in this step's loss-history slot, for the host's next look
// at the history (the divergence guard).
void check_finite(float value) {
    if (isnan(value) || isinf(value)) {
        imageStore(loss_history, HISTORY_SLOT * LOSS_SLOT_SIZE + DIVERGENCE_ENTRY, ivec4(1));
    }
}

#ifdef THETA_AVERAGE
// Iterate averaging (Settings.average_eta = eta): after each of this set's updates t =
// 1, 2, ..., theta_average += w (theta - theta_average), w = (eta + 1) / (t + eta), a
// polynomial-decay average (Shamir & Zhang 2013) over roughly the last t / (eta + 1)
// updates. The optimiser steps theta; the average is what a scenario may output.
layout(r32f) uniform imageBuffer theta_average;
uniform float average_eta;
#endif

// Finishes the previous step for parameter i (Adam update, if it was perturbed then and
// had contributions) and returns its theta.
float adam_theta(int i, int element) {
    float value = imageLoad(theta, i).x;
    check_finite(value);  // every parameter, every step: also those no pixel sees
    int previous_step = STEP_INDEX - 1;
    if (APPLY_UPDATE == 0 || previous_step % perturbation_period != perturbation_phase) return value;
#ifdef ESTIMATOR_GLOBAL
    int slot = PREVIOUS_HISTORY_SLOT * LOSS_SLOT_SIZE;
    double delta_sum = read_fixed(imageLoad(loss_history, slot + 2).x, imageLoad(loss_history, slot + 3).x);
    float contributions = 1.0;
#else
    int base = (((1 - PARITY) * element_count + element) * channels + channel) * ACCUMULATOR_ENTRIES;
    double delta_sum = read_fixed(imageLoad(accumulator, base).x, imageLoad(accumulator, base + 1).x);
    float contributions = float(read_fixed(imageLoad(accumulator, base + 2).x, imageLoad(accumulator, base + 3).x));
#endif
    if (contributions <= 0.0) return value;
#ifdef SUMMED_ESTIMATE
    contributions = 1.0;  // the weighted sum over the pixels, not their mean (Settings.normalised)
#endif
    // delta_i is the same for every pixel of a step, so G sums w_p Delta_p alone and the
    // sign is applied here: g_i = delta_i * sum_p w_p Delta_p / (2 eps n).
    float sign_i = PERTURBATION_SIGN(i, PREVIOUS_SEED);
    if (sign_i == 0.0) return value;  // not perturbed in that step (a sparse PERTURBATION_SIGN)
    float g = sign_i * float(delta_sum) / (2.0 * epsilon * PREVIOUS_EPSILON_SCALE * contributions);
    float m = adam.x * imageLoad(first_moment, i).x + (1.0 - adam.x) * g;
    float v = adam.y * imageLoad(second_moment, i).x + (1.0 - adam.y) * g * g;
    int t = previous_step / perturbation_period + 1;  // this set's update count
    float m_hat = m / bias_correction(adam.x, t);
    float v_hat = v / bias_correction(adam.y, t);
    value -= learning_rate * LEARNING_RATE_SCALE * m_hat / (sqrt(v_hat) + adam.z);
    check_finite(value);  // before the clamp, which could hide a NaN
    value = clamp(value, value_range.x, value_range.y);
    imageStore(theta, i, vec4(value));
    imageStore(first_moment, i, vec4(m));
    imageStore(second_moment, i, vec4(v));
    return value;
}

float updated_theta(int i, int element) {
    float value = adam_theta(i, element);
#ifdef THETA_AVERAGE
    int previous_step = STEP_INDEX - 1;
    if (APPLY_UPDATE != 0 && previous_step % perturbation_period == perturbation_phase) {
        float t = float(previous_step / perturbation_period + 1);  // this set's update count
        float average = imageLoad(theta_average, i).x;
        imageStore(theta_average, i, vec4(average + (average_eta + 1.0) / (t + average_eta) * (value - average)));
    }
#endif
    return value;
}

// eps * delta_i for this step's perturbation (0 when it is not this set's turn).
float perturbation(int i) {
    return STEP_INDEX % perturbation_period == perturbation_phase
        ? epsilon * EPSILON_SCALE * PERTURBATION_SIGN(i, STEP_SEED) : 0.0;
}

// How theta+ and theta- are written for the draw is the parameter set's (its kind's):
// the loader puts the set's writer here (ParameterSet.copy_writer: core/copies_buffer.glsl,
// core/copies_image2d.glsl, or a kind's own), which defines write_copies(invocation) from
// updated_theta(i, element) and perturbation(i) above.
#include "copies.glsl"

void main() {
    // Large sets dispatch a 2D grid of workgroups (a dimension may hold only 65535).
    int row_length = int(gl_NumWorkGroups.x * gl_WorkGroupSize.x);
    int invocation = int(gl_GlobalInvocationID.y) * row_length + int(gl_GlobalInvocationID.x);

    if (clears_accumulator != 0) {
        // Stamp the step into its loss-history slot, so that waiting for the history (the
        // host's one sync) also waits for P, even in a frame where G does not run.
        if (invocation == 0) imageStore(loss_history, HISTORY_SLOT * LOSS_SLOT_SIZE + 6, ivec4(STEP_INDEX + 1));
        // The half the coming G writes; its last reader was the previous step's P.
        int half_size = element_count * channels * ACCUMULATOR_ENTRIES;
        int stride = row_length * int(gl_NumWorkGroups.y);
        for (int j = invocation; j < half_size; j += stride) {
            imageStore(accumulator, PARITY * half_size + j, ivec4(0));
        }
    }
    write_copies(invocation);  // where and how: the set's writer (copies.glsl)
}
