#version 430
// The first pass of the step's depth sort: each splat's key is the eye depth (clip w) of
// its unperturbed mean under this step's view, so theta+ and theta- are drawn in one
// order. Padding up to the sort's power of two sorts last.
#include "common.glsl"
#include "view.glsl"

layout(local_size_x = PERTURB_GROUP) in;
uniform samplerBuffer mean_theta;                   // theta of the means (x, y, z per splat)
layout(r32f) uniform writeonly imageBuffer sort_keys;
layout(r32i) uniform writeonly iimageBuffer sort_order;
uniform int splat_count;
uniform int sort_size;                              // a power of two >= splat_count

const float FAR_KEY = 3.0e38;

void main() {
    int i = int(gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x + gl_GlobalInvocationID.x);
    if (i >= sort_size) return;
    float key = FAR_KEY;
    if (i < splat_count) {
        vec3 mean = vec3(texelFetch(mean_theta, 3 * i).x, texelFetch(mean_theta, 3 * i + 1).x,
                         texelFetch(mean_theta, 3 * i + 2).x);
        float depth = project(mean).w;
        key = depth > 0.0 ? depth : FAR_KEY;  // behind the eye: culled by the draw anyway
    }
    imageStore(sort_keys, i, vec4(key));
    imageStore(sort_order, i, ivec4(i));
}
