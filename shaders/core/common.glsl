// Shared helpers for every SGE shader: the perturbation hash, the ID encoding, the
// per-pixel loss and order-independent fixed-point accumulation.
// Pulled in by optimizer/shaders.py wherever a shader says `#include "common.glsl"`.

// --- Per-step state, one PTA shared by every pass (optimizer/sge.py: StepState) ---------
// step_state[0] perturbation seed of this step
// step_state[1] perturbation seed of the previous step (P recomputes its delta_i)
// step_state[2] parity: the accumulator half this step's G writes and its P clears
// step_state[3] 1 when P must first finish the previous step (Adam update)
// step_state[4] index s of this step (0-based; P's update is that of step s - 1)
// step_state[5] loss-history slot this step's loss pass writes
// step_state[6] loss-history slot of the previous step (the global estimator reads it)
// step_state[7] the stamp this step's renders write into the ID target's .w (targets.glsl)
// step_state[8] the stamp on the reference's page: step_state[7], or that of the step that
//               last drew it where this step reuses the page (Optimizer: reuse_reference)
// step_scalars[0] learning-rate scale of the update P applies (the schedule)
// step_scalars[1] epsilon scale of the previous step (the update divides by its 2 eps)
// step_scalars[2] epsilon scale of this step's perturbation
uniform int step_state[9];
#define STEP_SEED step_state[0]
#define PREVIOUS_SEED step_state[1]
#define PARITY step_state[2]
#define APPLY_UPDATE step_state[3]
#define STEP_INDEX step_state[4]
#define HISTORY_SLOT step_state[5]
#define PREVIOUS_HISTORY_SLOT step_state[6]
#define RENDER_STAMP step_state[7]
#define REFERENCE_STAMP step_state[8]
#define LEARNING_RATE_SCALE step_scalars[0]
#define PREVIOUS_EPSILON_SCALE step_scalars[1]
#define EPSILON_SCALE step_scalars[2]
uniform float step_scalars[4];

// --- delta_i = +-1 from a hash of (parameter index, parameter set, step seed) -----------
// Never stored: P and anything else that needs it recomputes it. PCG-style integer hash
// (Jarzynski & Olano 2020, "Hash Functions for GPU Rendering").
uint pcg_hash(uint v) {
    uint state = v * 747796405u + 2891336453u;
    uint word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

float perturbation_sign(uint parameter_index, uint set_id, uint seed) {
    uint h = pcg_hash(parameter_index ^ pcg_hash(seed ^ pcg_hash(set_id)));
    return (h & 0x80000000u) != 0u ? 1.0 : -1.0;
}

// --- ID targets: float(id + 1), 0 = background; every integer up to 2^24 is exact ------
int decode_id(float stored) { return int(stored + 0.5) - 1; }

// --- Loss history: one slot per step, a ring the host reads now and then -------------
// [0,1] summed pixel loss (mean of the theta+ and theta- renders), [2,3] summed Delta_p,
// [6] the step index + 1, stamped by P; [7] the divergence flag: 1 when P computed a
// non-finite parameter, 2 when the step's loss sum is not finite (0 otherwise; the loss
// sum clears it in the next slot); the rest is spare.
// LOSS_SLOT_SIZE and DIVERGENCE_ENTRY: defined by the loader (optimizer/constants.py).

// --- Per-pixel loss: L2 over RGB, in linear space; or, with LOSS_SRGB, on the sRGB-encoded
// pixel, the space 8-bit images and their PSNR live in (a step in the dark then counts
// as much as one in the light) ----------------------------------------------------------
#ifdef LOSS_SRGB
vec3 encode_srgb(vec3 c) {  // extended linearly below 0 (a perturbed render may dip there)
    return mix(12.92 * c, 1.055 * pow(max(c, vec3(0.0031308)), vec3(1.0 / 2.4)) - 0.055, greaterThan(c, vec3(0.0031308)));
}
#endif

float pixel_loss(vec3 color, vec3 target) {
#ifdef LOSS_SRGB
    vec3 d = encode_srgb(color) - encode_srgb(target);
#else
    vec3 d = color - target;
#endif
    return dot(d, d);
}

// --- Contributor accumulators: per element, sum_p w_p Delta_p and n = sum_p w_p, each a
// 64-bit fixed-point pair; two halves (parity) so P reads one while G fills the other.
// ACCUMULATOR_ENTRIES: defined by the loader (optimizer/constants.py).

// --- Fixed-point accumulation --------------------------------------------------------
// GLSL has no portable float atomicAdd. Sums are kept as 64-bit two's-complement integers
// in two r32i words (low, high) so that they are exact, order-independent (bit-identical
// runs) and cannot overflow: per-pixel terms are clamped to +-FIXED_LIMIT and quantised
// at 2^-24, so 2^39 worst-case terms fit before the 64-bit sum wraps.
// FIXED_SCALE (2^24): defined by the loader (optimizer/constants.py).
const float FIXED_LIMIT = 127.0;           // |term| * 2^24 < 2^31

int to_fixed(float value) {
    return int(round(clamp(value, -FIXED_LIMIT, FIXED_LIMIT) * FIXED_SCALE));
}

// Adds a signed 32-bit term to the 64-bit sum at (index, index + 1) of an iimageBuffer.
// The carry out of the low word is detected by unsigned wrap-around.
#define ATOMIC_ADD_FIXED(image, index, term) {                                   \
    int _term = (term);                                                          \
    if (_term != 0) {                                                            \
        uint _old = uint(imageAtomicAdd(image, (index), _term));                 \
        int _high = (_term < 0 ? -1 : 0) + ((_old + uint(_term) < _old) ? 1 : 0); \
        if (_high != 0) imageAtomicAdd(image, (index) + 1, _high);               \
    } }

// A double as the (low, high) words of its 64-bit fixed-point form (read_fixed's inverse).
ivec2 to_fixed_wide(double value) {
    double scaled = round(value * double(FIXED_SCALE));
    double high = floor(scaled / 4294967296.0);
    return ivec2(int(uint(scaled - high * 4294967296.0)), int(high));
}

double read_fixed(int low, int high) {
    return (double(high) * 4294967296.0 + double(uint(low))) / double(FIXED_SCALE);
}
