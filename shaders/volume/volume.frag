#version 430
// Marches the volume through a pixel: SPEC.md's emission-absorption image formation
// (march.glsl, composite.glsl). The field is a grid in 3D textures (sigma and linear RGB
// at voxel centres, trilinear: the theta+ / theta- copies P wrote, or a fixed grid) or,
// with ANALYTIC_TRUTH, SPEC's truth evaluated at each sample (the scenario's reference).
// In the optimizer's renders it writes the core's planes (colour; sample: covered, depth,
// stamp); with PANDA_CAMERA (game.volume_node) a premultiplied colour over the scene.
#include "common.glsl"
#include "march.glsl"

in vec3 box_position;

#ifdef PANDA_CAMERA
uniform mat4 p3d_ModelViewMatrixInverse;
#endif

#ifdef ANALYTIC_TRUTH
// sigma(x) = sum_k a_k exp(-|x - c_k|^2 / (2 s_k^2)); c(x) = 0.5 + 0.5 sin(3x + (0, 2, 4)).
uniform vec4 blob_centres[8];  // .xyz c_k, .w 1 / (2 s_k^2)
uniform float blob_amplitudes[8];

vec4 field(vec3 x) {
    float sigma = 0.0;
    for (int k = 0; k < 8; ++k) {
        vec3 d = x - blob_centres[k].xyz;
        sigma += blob_amplitudes[k] * exp(-dot(d, d) * blob_centres[k].w);
    }
    return vec4(sigma, 0.5 + 0.5 * sin(3.0 * x + vec3(0.0, 2.0, 4.0)));
}
#else
uniform sampler3D density_grid;  // .r sigma >= 0 at voxel centres (hardware trilinear)
uniform sampler3D color_grid;    // .rgb linear RGB

vec4 field(vec3 x) {
    vec3 uvw = x * 0.5 + 0.5;
    return vec4(texture(density_grid, uvw).r, texture(color_grid, uvw).rgb);
}
#endif

#include "composite.glsl"

#ifdef PANDA_CAMERA
out vec4 out_color;
#else
layout(location = 0) out vec4 out_color;
layout(location = 1) out vec4 out_sample;
#endif

void main() {
#ifdef PANDA_CAMERA
    vec3 eye = (p3d_ModelViewMatrixInverse * vec4(0.0, 0.0, 0.0, 1.0)).xyz;
#else
    vec3 eye = camera_position.xyz;
#endif
    Ray ray;
    if (!cube_ray(eye, normalize(box_position - eye), ray)) discard;
    vec4 result = march(ray, ray_jitter(ivec2(gl_FragCoord.xy)));
#ifdef PANDA_CAMERA
    out_color = result;  // premultiplied: blended over the scene behind the box
#else
    out_color = vec4(result.rgb, 1.0);
    out_sample = vec4(1.0, 0.0, ray.enter, float(step_state[7]));
#endif
}
