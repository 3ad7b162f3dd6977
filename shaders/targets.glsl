// Reading the render targets of one image pixel, for the passes of G.
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

uniform sampler2D color_plus;
uniform sampler2D color_minus;
uniform sampler2D color_reference;
uniform sampler2D id_plus;
uniform sampler2D id_minus;

struct PixelSample {
    bool inside;       // the pixel lies in the image (dispatches round up)
    float loss_plus;   // l(C+, T) of the filtered pixel
    float loss_minus;  // l(C-, T)
};

ivec2 subpixel(ivec2 pixel, int k) {
    return pixel * SUPERSAMPLING + ivec2(k % SUPERSAMPLING, k / SUPERSAMPLING);
}

bool inside_image(ivec2 pixel) {
    return all(lessThan(pixel * SUPERSAMPLING, textureSize(color_reference, 0)));
}

// Whether either perturbed render drew something in the pixel (it has contributors).
bool pixel_covered(ivec2 pixel) {
    if (!inside_image(pixel)) return false;
    for (int k = 0; k < SUPERSAMPLING * SUPERSAMPLING; ++k) {
        ivec2 q = subpixel(pixel, k);
        if (texelFetch(id_plus, q, 0).x > 0.5 || texelFetch(id_minus, q, 0).x > 0.5) return true;
    }
    return false;
}

PixelSample read_pixel(ivec2 pixel) {
    PixelSample s;
    s.inside = inside_image(pixel);
    s.loss_plus = 0.0;
    s.loss_minus = 0.0;
    if (!s.inside) return s;
    vec3 plus = vec3(0.0), minus = vec3(0.0), target = vec3(0.0);
    for (int k = 0; k < SUPERSAMPLING * SUPERSAMPLING; ++k) {
        ivec2 q = subpixel(pixel, k);
        plus += texelFetch(color_plus, q, 0).rgb;
        minus += texelFetch(color_minus, q, 0).rgb;
        target += texelFetch(color_reference, q, 0).rgb;
    }
    float samples = float(SUPERSAMPLING * SUPERSAMPLING);
    s.loss_plus = pixel_loss(plus / samples, target / samples);
    s.loss_minus = pixel_loss(minus / samples, target / samples);
    return s;
}
