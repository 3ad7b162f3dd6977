#version 430
// One compare-exchange step (block size k, distance j) of a bitonic sort of (key, splat)
// pairs by key, ties by splat: deterministic, so runs reproduce bit for bit. The passes
// of a sort are log2(n) (log2(n) + 1) / 2 dispatches of this shader (Splats.sort_passes).
#include "common.glsl"

layout(local_size_x = PERTURB_GROUP) in;
layout(r32f) uniform coherent imageBuffer sort_keys;
layout(r32i) uniform coherent iimageBuffer sort_order;
uniform int sort_size;
uniform int block;      // k
uniform int distance;   // j

void main() {
    int i = int(gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x + gl_GlobalInvocationID.x);
    int partner = i ^ distance;
    if (i >= sort_size || partner <= i) return;
    float key_i = imageLoad(sort_keys, i).x, key_p = imageLoad(sort_keys, partner).x;
    int splat_i = imageLoad(sort_order, i).x, splat_p = imageLoad(sort_order, partner).x;
    bool ascending = (i & block) == 0;
    bool greater = key_i > key_p || (key_i == key_p && splat_i > splat_p);
    if (greater == ascending) {
        imageStore(sort_keys, i, vec4(key_p));
        imageStore(sort_keys, partner, vec4(key_i));
        imageStore(sort_order, i, ivec4(splat_p));
        imageStore(sort_order, partner, ivec4(splat_i));
    }
}
