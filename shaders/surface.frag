#version 430
// Shades a surface and writes the three targets G reads: color (float), the primitive ID
// (float(id + 1), 0 = background) and the interpolated UV (.xy) with the barycentrics of
// the triangle's first two corners (.zw).
in vec3 surface_color;
in vec2 surface_uv;
in vec2 surface_barycentric;

#ifdef ALBEDO_TEXTURE
uniform sampler2D albedo;
#endif

layout(location = 0) out vec4 out_color;
layout(location = 1) out vec4 out_id;
layout(location = 2) out vec4 out_uv;

void main() {
    vec3 color = surface_color;
#ifdef ALBEDO_TEXTURE
    color *= texture(albedo, surface_uv).rgb;
#endif
    out_color = vec4(color, 1.0);
    out_id = vec4(float(gl_PrimitiveID + 1), 0.0, 0.0, 1.0);
    out_uv = vec4(surface_uv, surface_barycentric);
}
