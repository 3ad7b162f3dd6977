// Reading the render targets of one image pixel, for the passes of G.
//
// The three renders are the pages THETA_PLUS, THETA_MINUS and REFERENCE of one set of
// target arrays (one offscreen buffer draws them as three display regions,
// optimizer/gpu.py: PassBuffer).
//
// The renders may be supersampled SUPERSAMPLING x SUPERSAMPLING per image pixel (set by
// the optimizer). The loss is taken on the box-filtered pixel, the antialiased image:
// coverage is then fractional, so the loss varies smoothly with a silhouette's position
// instead of jumping by a whole pixel. Without it, at the optimum every perturbation
// still flips whole pixels in and out and the estimate never quietens (nvdiffrast's
// antialiasing op plays the same role for its gradients).
#ifndef SUPERSAMPLING
#define SUPERSAMPLING 1
#endif

// The core's planes (optimizer/kind.py); a kind's own planes come as target_<plane>.
uniform sampler2DArray target_color;   // .rgb: the shaded color
uniform sampler2DArray target_sample;  // .x: float(element + 1), 0 = background; .y: the kind's;
                                       // .z: eye depth; .w: the render stamp

// THETA_PLUS, THETA_MINUS, REFERENCE: the pages, defined by the loader (optimizer/constants.py).

uniform vec4 target_background;      // the renders' clear color

// The targets are not always cleared before a step's renders (Optimizer: clear_every_step):
// a texel counts only where the sample plane's .w holds this step's render stamp, and
// reads as the clear value (the background, zeros) elsewhere, whether cleared or stale.
vec4 sample_at(int render, ivec2 q) {
    vec4 sample_plane = texelFetch(target_sample, ivec3(q, render), 0);
    int stamp = render == REFERENCE ? REFERENCE_STAMP : RENDER_STAMP;
    return sample_plane.w == float(stamp) ? sample_plane : vec4(0.0);
}

struct PixelSample {
    bool inside;       // the pixel lies in the image (dispatches round up)
    bool covered;      // either perturbed render drew in it: the pixel has contributors
    float loss_plus;   // l(C+, T) of the filtered pixel
    float loss_minus;  // l(C-, T)
};

ivec2 subpixel(ivec2 pixel, int k) {
    return pixel * SUPERSAMPLING + ivec2(k % SUPERSAMPLING, k / SUPERSAMPLING);
}

bool inside_image(ivec2 pixel) {
    return all(lessThan(pixel * SUPERSAMPLING, textureSize(target_color, 0).xy));
}

// A render's color where its (already fetched) ID says it drew this step, else the background.
vec3 color_with(int render, ivec2 q, vec4 id) {
    return id.w != 0.0 ? texelFetch(target_color, ivec3(q, render), 0).rgb : target_background.rgb;
}

#ifdef DEPTH_CONTRAST
// The depth term's weight at a sub-sample the reference covers: 1 + min(DEPTH_CONTRAST *
// |grad T|^2, DEPTH_CONTRAST_CAP), grad T the reference's colour differences to the next
// sub-samples along x and y on its own surface, per 1/256 of the render's width (so a
// weight means the same at every resolution). A surface lying off the source's shows
// the source's texture where it has contrast shifted with the view (parallax), which no
// bake can take out; where the texture is flat its depth costs little. Capped: a hard
// edge (black on white) would otherwise let a few pixels outweigh the rest.
float depth_contrast(ivec2 q, vec4 r) {
    vec3 here = color_with(REFERENCE, q, r);
    float per_unit = float(textureSize(target_color, 0).x) / 256.0;
    float squared = 0.0;
    for (int axis = 0; axis < 2; ++axis) {
        ivec2 next = q + (axis == 0 ? ivec2(1, 0) : ivec2(0, 1));
        vec4 n = sample_at(REFERENCE, next);  // outside the image: zeros, not covered
        if (n.x > 0.5) {
            vec3 d = (color_with(REFERENCE, next, n) - here) * per_unit;
            squared += dot(d, d);
        }
    }
    return 1.0 + min(DEPTH_CONTRAST * squared, DEPTH_CONTRAST_CAP);
}
#endif

// Each sub-sample's three IDs are fetched once; colors only where a render drew.
PixelSample read_pixel(ivec2 pixel) {
    PixelSample s;
    s.inside = inside_image(pixel);
    s.covered = false;
    s.loss_plus = 0.0;
    s.loss_minus = 0.0;
    if (!s.inside) return s;
    vec3 plus = vec3(0.0), minus = vec3(0.0), target = vec3(0.0);
#ifdef DEPTH_WEIGHT
    float depth_plus = 0.0, depth_minus = 0.0;
#endif
#ifdef COVERAGE_WEIGHT
    float coverage_plus = 0.0, coverage_minus = 0.0;  // sub-samples whose coverage differs from the reference's
#endif
    for (int k = 0; k < SUPERSAMPLING * SUPERSAMPLING; ++k) {
        ivec2 q = subpixel(pixel, k);
        vec4 p = sample_at(THETA_PLUS, q), m = sample_at(THETA_MINUS, q), r = sample_at(REFERENCE, q);
        s.covered = s.covered || p.x > 0.5 || m.x > 0.5;
        plus += color_with(THETA_PLUS, q, p);
        minus += color_with(THETA_MINUS, q, m);
        target += color_with(REFERENCE, q, r);
#ifdef DEPTH_WEIGHT
        if (p.x > 0.5 && m.x > 0.5 && r.x > 0.5) {
            float dp = min(abs(p.z - r.z), DEPTH_LIMIT), dm = min(abs(m.z - r.z), DEPTH_LIMIT);
#ifdef DEPTH_CONTRAST
            float weight = depth_contrast(q, r);
#else
            float weight = 1.0;
#endif
            depth_plus += weight * dp * dp;
            depth_minus += weight * dm * dm;
        }
#endif
#ifdef COVERAGE_WEIGHT
        coverage_plus += (p.x > 0.5) != (r.x > 0.5) ? 1.0 : 0.0;
        coverage_minus += (m.x > 0.5) != (r.x > 0.5) ? 1.0 : 0.0;
#endif
    }
    float samples = float(SUPERSAMPLING * SUPERSAMPLING);
    s.loss_plus = pixel_loss(plus / samples, target / samples);
    s.loss_minus = pixel_loss(minus / samples, target / samples);
#ifdef COLOR_WEIGHT
    s.loss_plus *= COLOR_WEIGHT;
    s.loss_minus *= COLOR_WEIGHT;
#endif
#ifdef DEPTH_WEIGHT
    s.loss_plus += DEPTH_WEIGHT / samples * depth_plus;
    s.loss_minus += DEPTH_WEIGHT / samples * depth_minus;
#endif
#ifdef COVERAGE_WEIGHT
    s.loss_plus += COVERAGE_WEIGHT / samples * coverage_plus;
    s.loss_minus += COVERAGE_WEIGHT / samples * coverage_minus;
#endif
    return s;
}
