// Reading the render targets of one pixel, for the passes of G.
uniform sampler2D color_plus;
uniform sampler2D color_minus;
uniform sampler2D color_reference;
uniform sampler2D id_plus;
uniform sampler2D id_minus;

struct PixelSample {
    bool inside;       // the pixel lies in the image (dispatches round up)
    bool covered;      // either perturbed render drew something here
    int id_plus;       // primitive in the theta+ render, -1 for none
    int id_minus;      // primitive in the theta- render, -1 for none
    float loss_plus;   // l(C+, T)
    float loss_minus;  // l(C-, T)
};

PixelSample read_pixel(ivec2 pixel) {
    PixelSample s;
    s.inside = all(lessThan(pixel, textureSize(color_reference, 0)));
    if (!s.inside) {
        s.covered = false; s.id_plus = -1; s.id_minus = -1; s.loss_plus = 0.0; s.loss_minus = 0.0;
        return s;
    }
    vec3 target = texelFetch(color_reference, pixel, 0).rgb;
    s.loss_plus = pixel_loss(texelFetch(color_plus, pixel, 0).rgb, target);
    s.loss_minus = pixel_loss(texelFetch(color_minus, pixel, 0).rgb, target);
    s.id_plus = decode_id(texelFetch(id_plus, pixel, 0).x);
    s.id_minus = decode_id(texelFetch(id_minus, pixel, 0).x);
    s.covered = s.id_plus >= 0 || s.id_minus >= 0;
    return s;
}
