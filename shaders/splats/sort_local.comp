#version 430
// The bitonic sort's steps of distance < SORT_CHUNK / 2... 1 inside one workgroup's chunk of
// SORT_CHUNK (key, splat) pairs, in shared memory: with block = 0, every step of the blocks
// 2 .. SORT_CHUNK (each chunk sorted, alternately ascending and descending); with a block
// k > SORT_CHUNK, the steps j = SORT_CHUNK / 2 .. 1 of that block. Cuts the sort's
// dispatches from log2(n)(log2(n) + 1)/2 to about (log2(n / SORT_CHUNK) + 1)^2 / 2.
#include "common.glsl"

#define SORT_CHUNK 512
layout(local_size_x = 256) in;  // SORT_CHUNK / 2 (a literal: GLSL 4.30)
layout(r32f) uniform coherent imageBuffer sort_keys;
layout(r32i) uniform coherent iimageBuffer sort_order;
uniform int block;

shared float keys[SORT_CHUNK];
shared int splats[SORT_CHUNK];

void compare_exchange(int t, int k, int j, int first) {
    int i = ((t & ~(j - 1)) << 1) | (t & (j - 1));
    int partner = i | j;
    bool ascending = ((first + i) & k) == 0;
    float key_i = keys[i], key_p = keys[partner];
    int splat_i = splats[i], splat_p = splats[partner];
    bool greater = key_i > key_p || (key_i == key_p && splat_i > splat_p);
    if (greater == ascending) {
        keys[i] = key_p;
        keys[partner] = key_i;
        splats[i] = splat_p;
        splats[partner] = splat_i;
    }
}

void main() {
    int t = int(gl_LocalInvocationID.x);
    int first = int(gl_WorkGroupID.x) * SORT_CHUNK;
    for (int h = 0; h < 2; ++h) {
        keys[t + h * SORT_CHUNK / 2] = imageLoad(sort_keys, first + t + h * SORT_CHUNK / 2).x;
        splats[t + h * SORT_CHUNK / 2] = imageLoad(sort_order, first + t + h * SORT_CHUNK / 2).x;
    }
    barrier();
    if (block == 0) {
        for (int k = 2; k <= SORT_CHUNK; k <<= 1) {
            for (int j = k >> 1; j > 0; j >>= 1) {
                compare_exchange(t, k, j, first);
                barrier();
            }
        }
    } else {
        for (int j = SORT_CHUNK >> 1; j > 0; j >>= 1) {
            compare_exchange(t, block, j, first);
            barrier();
        }
    }
    for (int h = 0; h < 2; ++h) {
        imageStore(sort_keys, first + t + h * SORT_CHUNK / 2, vec4(keys[t + h * SORT_CHUNK / 2]));
        imageStore(sort_order, first + t + h * SORT_CHUNK / 2, ivec4(splats[t + h * SORT_CHUNK / 2]));
    }
}
