// One splat of the standard 3DGS forward model, shared by the draw (splats.vert/.frag)
// and by G (gradient.comp), which recomputes the blending weights from the same code.
// A splat's 14 parameters are stored as the 3DGS .ply holds them: mean (3), log-scale (3),
// rotation quaternion w-first (4, normalised here), opacity logit (1), f_dc (3; the
// degree-0 spherical-harmonic coefficient: colour = 0.5 + SH_C0 * f_dc).
const float SH_C0 = 0.28209479177387814;
const float ALPHA_MIN = 1.0 / 255.0;   // fainter fragments are dropped
const float ALPHA_MAX = 0.99;          // opacity * G is clamped to it
const float DILATION = 0.3;            // px^2 added to the 2D covariance (anti-aliasing)
const float CUT_SIGMAS = 3.0;          // the footprint ends at 3 sigma

// The copies P wrote, one buffer per set: [theta+ x N | theta- x N] (core/copies_buffer.glsl).
uniform samplerBuffer means;
uniform samplerBuffer log_scales;
uniform samplerBuffer rotations;
uniform samplerBuffer opacities;
uniform samplerBuffer colors;
uniform int splat_count;
uniform vec2 viewport;  // the render's size in pixels

struct Footprint {
    bool visible;
    vec2 centre;   // pixels, gl_FragCoord's convention (pixel centres at i + 0.5)
    vec3 conic;    // the inverse 2D covariance (xx, xy, yy), px^-2
    float radius;  // half the side of the square the footprint is cut to (3 sigma), px
    vec2 extent;   // half the sides of the quad drawn: the part of that square where
                   // alpha can reach ALPHA_MIN (fewer fragments, the same image)
    float depth;   // clip w: the eye-space depth
};

float fetch1(samplerBuffer values, int width, int splat, int side, int c) {
    return texelFetch(values, (side * splat_count + splat) * width + c).x;
}

vec3 splat_mean(int splat, int side) {
    return vec3(fetch1(means, 3, splat, side, 0), fetch1(means, 3, splat, side, 1), fetch1(means, 3, splat, side, 2));
}

float splat_opacity(int splat, int side) {
    return 1.0 / (1.0 + exp(-fetch1(opacities, 1, splat, side, 0)));
}

vec3 splat_color(int splat, int side) {
    vec3 f_dc = vec3(fetch1(colors, 3, splat, side, 0), fetch1(colors, 3, splat, side, 1), fetch1(colors, 3, splat, side, 2));
    return max(vec3(0.0), vec3(0.5) + SH_C0 * f_dc);
}

// EWA splatting (Zwicker et al. 2002) as 3DGS does it: the 3D covariance R S S^T R^T
// pushed through the Jacobian of the projection at the mean. The Jacobian is taken of the
// pixel position x = (M p).xy / (M p).w directly from the model-view-projection M, which
// is the same local affine approximation as 3DGS's J W without needing the view apart.
Footprint splat_footprint(int splat, int side, mat4 mvp) {
    Footprint f;
    vec3 mean = splat_mean(splat, side);
    vec4 clip = mvp * vec4(mean, 1.0);
    f.depth = clip.w;
    f.visible = false;
    if (clip.w <= 1e-6) return f;
    vec2 ndc = clip.xy / clip.w;
    if (any(greaterThan(abs(ndc), vec2(1.3)))) return f;  // 3DGS's frustum test
    vec2 half_size = 0.5 * viewport;
    f.centre = (ndc + 1.0) * half_size;
    // d ndc / d p, row a: (M[a] - ndc_a M[3]) / w, with M[r] the r-th row's xyz.
    vec3 row_w = vec3(mvp[0][3], mvp[1][3], mvp[2][3]);
    vec3 jx = (vec3(mvp[0][0], mvp[1][0], mvp[2][0]) - ndc.x * row_w) / clip.w * half_size.x;
    vec3 jy = (vec3(mvp[0][1], mvp[1][1], mvp[2][1]) - ndc.y * row_w) / clip.w * half_size.y;
    vec4 q = vec4(fetch1(rotations, 4, splat, side, 0), fetch1(rotations, 4, splat, side, 1),
                  fetch1(rotations, 4, splat, side, 2), fetch1(rotations, 4, splat, side, 3));
    q /= max(length(q), 1e-12);
    float w = q.x, x = q.y, y = q.z, z = q.w;
    mat3 rotation = mat3(  // columns
        1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y + w * z), 2.0 * (x * z - w * y),
        2.0 * (x * y - w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z + w * x),
        2.0 * (x * z + w * y), 2.0 * (y * z - w * x), 1.0 - 2.0 * (x * x + y * y));
    vec3 scale = exp(vec3(fetch1(log_scales, 3, splat, side, 0), fetch1(log_scales, 3, splat, side, 1),
                          fetch1(log_scales, 3, splat, side, 2)));
    // The projected axes: J R S (2 x 3), covariance = (J R S)(J R S)^T.
    vec3 ax = (transpose(rotation) * jx) * scale;
    vec3 ay = (transpose(rotation) * jy) * scale;
    float a = dot(ax, ax) + DILATION, b = dot(ax, ay), c = dot(ay, ay) + DILATION;
    float det = a * c - b * b;
    if (det <= 0.0) return f;
    f.conic = vec3(c, -b, a) / det;
    float mid = 0.5 * (a + c);
    float lambda = mid + sqrt(max(0.1, mid * mid - det));
    f.radius = ceil(CUT_SIGMAS * sqrt(lambda));
    // alpha >= ALPHA_MIN needs d^T conic d <= 2 ln(opacity / ALPHA_MIN): that ellipse's box.
    float opacity = splat_opacity(splat, side);
    float reach = 2.0 * log(opacity / ALPHA_MIN);
    if (reach <= 0.0) return f;  // never reaches ALPHA_MIN anywhere
    f.extent = min(vec2(f.radius), sqrt(reach * vec2(a, c)));
    f.visible = true;
    return f;
}

// alpha of a splat at a pixel centre: opacity * G, 0 outside the 3-sigma square and
// below ALPHA_MIN, at most ALPHA_MAX.
float splat_alpha(Footprint f, float opacity, vec2 position) {
    vec2 d = position - f.centre;
    if (!f.visible || any(greaterThan(abs(d), vec2(f.radius)))) return 0.0;
    float power = -0.5 * (f.conic.x * d.x * d.x + f.conic.z * d.y * d.y) - f.conic.y * d.x * d.y;
    if (power > 0.0) return 0.0;
    float alpha = min(ALPHA_MAX, opacity * exp(power));
    return alpha < ALPHA_MIN ? 0.0 : alpha;
}

// --- The K-buffer: per pixel and side, the sort ranks of the K nearest fragments with
// alpha >= ALPHA_MIN, ascending (a splat's rank in this step's depth order is its depth
// key). EMPTY where fewer drew. One int buffer [side][k][y][x].
const int EMPTY_RANK = 0x7FFFFFFF;
int k_index(ivec2 pixel, int side, int k) {
    return ((side * K_BUFFER + k) * int(viewport.y) + pixel.y) * int(viewport.x) + pixel.x;
}
