#version 430
// Empties every pixel's K-buffer entries before the step's renders (after P, with the
// sort): G only reads them, so a frame that looks at them afterwards (tests) finds them.
#include "common.glsl"

layout(local_size_x = PERTURB_GROUP) in;
layout(r32i) uniform writeonly iimageBuffer k_buffer;
uniform int entries;

const int EMPTY_RANK = 0x7FFFFFFF;

void main() {
    int row_length = int(gl_NumWorkGroups.x * gl_WorkGroupSize.x);
    int stride = row_length * int(gl_NumWorkGroups.y);
    for (int i = int(gl_GlobalInvocationID.y) * row_length + int(gl_GlobalInvocationID.x); i < entries; i += stride) {
        imageStore(k_buffer, i, ivec4(EMPTY_RANK));
    }
}
