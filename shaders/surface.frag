#version 430
// Shades a surface and writes the three targets G reads: color (float), the primitive ID
// (float(id + 1), 0 = background) and the interpolated UV (.xy) with the barycentrics of
// the triangle's first two corners (.zw).
in vec3 surface_color;
in vec2 surface_uv;
in vec3 surface_normal;      // model space
in vec2 surface_barycentric;

#ifdef ALBEDO_TEXTURE
uniform sampler2D albedo;
#endif
#ifdef LIT
// One directional light per step, in model space: xyz towards the light, w ambient.
uniform vec4 light;
#endif

layout(location = 0) out vec4 out_color;
layout(location = 1) out vec4 out_id;
layout(location = 2) out vec4 out_uv;

void main() {
    vec3 color = surface_color;
#ifdef ALBEDO_TEXTURE
    color *= texture(albedo, surface_uv).rgb;
#endif
#ifdef LIT
    // Lambert plus ambient, in linear space. gl_FrontFacing keeps a two-sided surface lit
    // from the side the camera sees.
    vec3 normal = normalize(surface_normal) * (gl_FrontFacing ? 1.0 : -1.0);
    color *= light.w + (1.0 - light.w) * max(0.0, dot(normal, light.xyz));
#endif
    out_color = vec4(color, 1.0);
    out_id = vec4(float(gl_PrimitiveID + 1), 0.0, 0.0, 1.0);
    out_uv = vec4(surface_uv, surface_barycentric);
}
