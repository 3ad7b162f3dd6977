"""Numbers the host and the shaders share, defined once here: ``optimizer.shaders``
defines every entry of ``SHADER_CONSTANTS`` as a macro in each shader it loads, so no
GLSL file repeats one by hand."""

from __future__ import annotations

# The loss history: one slot of int32 words per step (common.glsl): [0,1] the summed pixel
# loss, [2,3] the summed Delta_p (64-bit fixed point), [6] the step index + 1, and at
# DIVERGENCE_ENTRY the divergence flag.
LOSS_SLOT_SIZE = 8
DIVERGENCE_ENTRY = 7
# A contributor accumulator's entries per element and channel: sum_p w_p Delta_p and
# n = sum_p w_p, each a (low, high) fixed-point pair.
ACCUMULATOR_ENTRIES = 4
# Fixed-point sums are quantised at 1 / FIXED_SCALE (common.glsl: to_fixed).
FIXED_SCALE = float(1 << 24)
# Workgroup sizes: P's (perturb.comp, one invocation per parameter) and the per-pixel
# passes' (loss.comp, gradient_*.comp: GRADIENT_GROUP x GRADIENT_GROUP pixels).
PERTURB_GROUP = 64
GRADIENT_GROUP = 8
# The pages of the render targets the three renders of a step draw into (targets.glsl).
THETA_PLUS, THETA_MINUS, REFERENCE = 0, 1, 2

SHADER_CONSTANTS = {
    "LOSS_SLOT_SIZE": LOSS_SLOT_SIZE,
    "DIVERGENCE_ENTRY": DIVERGENCE_ENTRY,
    "ACCUMULATOR_ENTRIES": ACCUMULATOR_ENTRIES,
    "FIXED_SCALE": f"{FIXED_SCALE:.1f}",  # a float literal, as GLSL needs
    "PERTURB_GROUP": PERTURB_GROUP,
    "GRADIENT_GROUP": GRADIENT_GROUP,
    "THETA_PLUS": THETA_PLUS,
    "THETA_MINUS": THETA_MINUS,
    "REFERENCE": REFERENCE,
}
