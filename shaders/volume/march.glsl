// The ray march of an emission-absorption volume in the cube [-1, 1]^3 (SPEC.md, "volume"):
// C = sum_i T_i (1 - exp(-sigma_i STEP)) c_i + T_end * background, T_i = exp(-sum_{j<i}
// sigma_j STEP), samples every STEP along the ray inside the cube, the first one offset by
// a per-pixel jitter in [0, STEP). The renders (theta+, theta-, the reference) and G build
// the rays and place the samples with these functions, so G re-marches exactly the
// samples the renders composited.
//
// Needs common.glsl (the hash, STEP_SEED) before it.

const float STEP = 1.0 / 64.0;
const float TRANSMITTANCE_CUTOFF = 1e-3;  // the march stops below it (renders and G alike)
const int MAX_SAMPLES = 222;              // the cube's diagonal 2 sqrt(3) / STEP, rounded up

uniform vec4 camera_position;  // the eye in model space (optimizer/view.py)
// < 0: the jitter of a step, hashed from the pixel and the step's seed (the same in the
// three renders and G); otherwise this fraction of STEP for every pixel (held-out views: 1/2).
uniform float fixed_jitter;

struct Ray {
    vec3 origin;
    vec3 direction;  // unit length: STEP is a distance
    float enter;     // the ray meets the cube over [enter, leave]
    float leave;
};

// Where a ray from ``origin`` along ``direction`` (unit) meets [-1, 1]^3; false if it misses.
bool cube_ray(vec3 origin, vec3 direction, out Ray ray) {
    ray.origin = origin;
    ray.direction = direction;
    vec3 inverse_direction = 1.0 / direction;
    vec3 t0 = (-1.0 - origin) * inverse_direction, t1 = (1.0 - origin) * inverse_direction;
    vec3 near = min(t0, t1), far = max(t0, t1);
    ray.enter = max(max(max(near.x, near.y), near.z), 0.0);
    ray.leave = min(min(far.x, far.y), far.z);
    return ray.leave > ray.enter;
}

// The ray through a pixel centre (window coordinates, e.g. gl_FragCoord.xy) of an image of
// ``size`` under the model-view-projection ``mvp`` whose eye is ``eye``: SPEC's pixel
// centres ((i + 1/2) / R * 2 - 1) * tan(half fov) along the camera's right and up axes.
bool pixel_ray(vec2 centre, vec2 size, mat4 mvp, vec3 eye, out Ray ray) {
    vec2 ndc = centre / size * 2.0 - 1.0;
    vec4 far_point = inverse(mvp) * vec4(ndc, 1.0, 1.0);
    return cube_ray(eye, normalize(far_point.xyz / far_point.w - eye), ray);
}

// The pixel's jitter, a fraction of STEP in [0, 1).
float ray_jitter(ivec2 pixel) {
    if (fixed_jitter >= 0.0) return fixed_jitter;
    uint h = pcg_hash(uint(pixel.x) ^ pcg_hash(uint(pixel.y) ^ pcg_hash(uint(STEP_SEED) ^ 0x5bd1e995u)));
    return float(h >> 8) / 16777216.0;
}

int sample_count(Ray ray, float jitter) {
    float first = ray.enter + jitter * STEP;
    return first < ray.leave ? min(MAX_SAMPLES, int(ceil((ray.leave - first) / STEP))) : 0;
}

vec3 sample_position(Ray ray, float jitter, int i) {
    return ray.origin + (ray.enter + (jitter + float(i)) * STEP) * ray.direction;
}
