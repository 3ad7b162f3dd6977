#version 430
// Shades a surface and writes the three targets G reads: color (float), the primitive ID
// (float(id + 1), 0 = background; .y the UV footprint, .z the depth) and the interpolated UV (.xy) with the barycentrics of
// the triangle's first two corners (.zw).
in vec3 surface_color;
in vec2 surface_uv;
in vec3 surface_normal;      // model space
in vec3 surface_position;    // model space
in vec3 surface_tangent;     // model space, normal-mapped surfaces
in vec3 surface_binormal;    // Panda3D's binormal column: the map's green runs along its negation
in vec2 surface_barycentric;

#ifdef ALBEDO_TEXTURE
uniform sampler2D albedo;
#endif
#ifdef ALBEDO_SRGB
// The albedo texture holds sRGB-encoded values (as 8-bit game textures do): optimised in
// that encoding, a parameter step is as visible in the dark as in the light, which is what
// PSNR on 8-bit sRGB images measures. Extended linearly below 0 (theta- may dip there).
vec3 srgb_to_linear(vec3 c) {
    return mix(c / 12.92, pow(max(c, 0.0) * (1.0 / 1.055) + 0.055 / 1.055, vec3(2.4)), greaterThan(c, vec3(0.04045)));
}
#endif
#ifdef LIT
// One directional light per step, in model space: xyz towards the light, w ambient.
uniform vec4 light;
#endif
#ifdef NORMAL_TEXTURE
// Tangent-space normals, encoded as 0.5 * n + 0.5 (a flat texel is (0.5, 0.5, 1)).
uniform sampler2D normal_map;
#endif
#ifdef ROUGHNESS_TEXTURE
uniform sampler2D roughness;
uniform vec4 camera_position;  // model space
const float SPECULAR_F0 = 0.04;  // dielectric reflectance at normal incidence
#endif

#ifdef STAMPED
// The optimizer's renders: step_state[7] is this render's stamp (common.glsl), written to
// the ID target's .w so G can tell this step's pixels from stale ones (targets.glsl).
uniform int step_state[8];
#endif

layout(location = 0) out vec4 out_color;
layout(location = 1) out vec4 out_id;
layout(location = 2) out vec4 out_uv;

void main() {
    vec3 color = surface_color;
#ifdef ALBEDO_TEXTURE
#ifdef ALBEDO_SRGB
    color *= srgb_to_linear(texture(albedo, surface_uv).rgb);
#else
    color *= texture(albedo, surface_uv).rgb;
#endif
#endif
#ifdef LIT
    // Lambert plus ambient, in linear space. gl_FrontFacing keeps a two-sided surface lit
    // from the side the camera sees.
    vec3 normal = normalize(surface_normal);
#ifdef NORMAL_TEXTURE
    // Green bends along the *negated* binormal column, as Panda3D's shader generator reads
    // it (-vtx_binormal), so a map is right here exactly when it is right under the
    // auto-shader (optimizer/lod/geometry.py: tangent_frames stores the binormal along -v).
    vec3 tangent_space = texture(normal_map, surface_uv).xyz * 2.0 - 1.0;
    normal = normalize(mat3(normalize(surface_tangent), -normalize(surface_binormal), normal) * tangent_space);
#endif
    normal *= gl_FrontFacing ? 1.0 : -1.0;
    float n_dot_l = max(0.0, dot(normal, light.xyz));
    color *= light.w + (1.0 - light.w) * n_dot_l;
#ifdef ROUGHNESS_TEXTURE
    // A normalised Blinn-Phong lobe whose exponent follows the roughness r the way
    // GGX's alpha = r^2 does (exponent 2 / alpha^2 - 2).
    float r = clamp(texture(roughness, surface_uv).r, 0.05, 1.0);
    float alpha = r * r;
    float exponent = 2.0 / (alpha * alpha) - 2.0;
    vec3 to_eye = normalize(camera_position.xyz - surface_position);
    vec3 halfway = normalize(to_eye + light.xyz);
    float lobe = (exponent + 8.0) / 8.0 * pow(max(0.0, dot(normal, halfway)), exponent);
    color += vec3(SPECULAR_F0 * lobe * n_dot_l * (1.0 - light.w));
#endif
#endif
#ifdef OUTPUT_NORMAL
    // Baking normal maps: the shading normal itself (model space, encoded as 0.5 n + 0.5).
    out_color = vec4(normal * 0.5 + 0.5, 1.0);
#else
    out_color = vec4(color, 1.0);
#endif
    // .y: the sample's UV footprint (the larger screen derivative of uv, in uv units per
    // render pixel): G finds from it the mip level a texture's sampler reads.
    float footprint = max(length(dFdx(surface_uv)), length(dFdy(surface_uv)));
    // .z: the eye-space depth (clip w = 1 / gl_FragCoord.w): the LOD job's bake compares
    // two renders' surfaces by it, and G's depth term (targets.glsl) measures it.
#ifdef STAMPED
    float stamp = float(step_state[7]);
#else
    float stamp = 1.0;
#endif
    out_id = vec4(float(gl_PrimitiveID + 1), footprint, 1.0 / gl_FragCoord.w, stamp);
    out_uv = vec4(surface_uv, surface_barycentric);
}
