#version 430
// The LOD job's bake, one view's pixels (optimizer/lod/scenario.py: project_reference):
// each pixel where both the LOD (theta+'s page) and the reference drew gives the
// reference's unlit colour, and with NORMALS its shading normal (drawn into theta-'s page)
// in the LOD's tangent frame there, to the texel the LOD shows, weighted by how squarely
// the LOD's triangle faces the eye squared, and by 1e-3 where the two surfaces' depths
// disagree (a sample for texels nothing else sees). The sums are fixed-point integers
// (SCALE units per 1), so any order of the atomic adds gives the same bits.
layout(local_size_x = 16, local_size_y = 16) in;

uniform sampler2DArray target_color;   // .rgb: colour
uniform sampler2DArray target_sample;  // .x: float(triangle + 1), 0 = background; .z: eye depth
uniform sampler2DArray target_uv;      // .xy: the LOD's uv, .zw: barycentrics of corners 0, 1
uniform samplerBuffer triangle_data;   // per LOD triangle: centre xyz, unit face normal xyz
uniform isamplerBuffer split_triangles;  // per LOD triangle: its 3 split vertices
uniform samplerBuffer frames;          // per split vertex: tangent, binormal, normal (xyz each)
uniform vec4 eye_position;             // model space
uniform ivec4 bake_pages;              // the LOD's page, the reference's, the normals' page
uniform int texture_size;
uniform float depth_tolerance;
uniform float fixed_scale;             // SCALE: integer units per 1
layout(r32i) uniform iimageBuffer sums;  // per texel: weight, then CHANNELS weighted samples

#ifdef NORMALS
#define CHANNELS 6
#else
#define CHANNELS 3
#endif
#define SAMPLE_LIMIT 2.0

vec3 fetch3(samplerBuffer data, int index) {
    return vec3(texelFetch(data, index).x, texelFetch(data, index + 1).x, texelFetch(data, index + 2).x);
}

vec3 unit(vec3 v) {
    float length_ = length(v);
    return length_ > 1e-12 ? v / length_ : v;
}

#ifdef NORMALS
// The model-space normal n as the tangent-space normal the surface shader turns back into
// it (surface.frag: mat3(T, -B, N) * t), by Cramer's rule; (0, 0, 1) where the frame is
// singular, and never grazing (z >= 0.05).
vec3 to_tangent_space(vec3 n, int triangle, vec2 barycentric) {
    vec3 weights = vec3(barycentric, 1.0 - barycentric.x - barycentric.y);
    vec3 tangent = vec3(0.0), binormal = vec3(0.0), normal = vec3(0.0);
    for (int k = 0; k < 3; ++k) {
        int vertex = texelFetch(split_triangles, 3 * triangle + k).x;
        tangent += weights[k] * fetch3(frames, 9 * vertex);
        binormal += weights[k] * fetch3(frames, 9 * vertex + 3);
        normal += weights[k] * fetch3(frames, 9 * vertex + 6);
    }
    tangent = unit(tangent);
    binormal = -unit(binormal);
    normal = unit(normal);
    float det = dot(tangent, cross(binormal, normal));
    vec3 t = abs(det) > 1e-3 ? vec3(dot(n, cross(binormal, normal)), dot(tangent, cross(n, normal)),
                                    dot(tangent, cross(binormal, n))) / det : vec3(0.0, 0.0, 1.0);
    t.z = max(t.z, 0.05);
    return normalize(t);
}
#endif

void add(int slot, float value) {
    imageAtomicAdd(sums, slot, int(round(value * fixed_scale)));
}

void main() {
    ivec2 pixel = ivec2(gl_GlobalInvocationID.xy);
    if (any(greaterThanEqual(pixel, textureSize(target_sample, 0).xy))) {
        return;
    }
    vec4 lod = texelFetch(target_sample, ivec3(pixel, bake_pages.x), 0);
    vec4 reference = texelFetch(target_sample, ivec3(pixel, bake_pages.y), 0);
    if (!(lod.x > 0.5 && reference.x > 0.5)) {
        return;
    }
    bool consistent = abs(lod.z - reference.z) < depth_tolerance;
    int triangle = int(round(lod.x)) - 1;
    vec3 to_eye = eye_position.xyz - fetch3(triangle_data, 6 * triangle);
    float facing = abs(dot(fetch3(triangle_data, 6 * triangle + 3), to_eye)) / length(to_eye);
    vec4 uv = texelFetch(target_uv, ivec3(pixel, bake_pages.x), 0);
    ivec2 texel = clamp(ivec2(uv.xy * float(texture_size)), ivec2(0), ivec2(texture_size - 1));
    int base = (texel.y * texture_size + texel.x) * (CHANNELS + 1);
    float w = facing * facing * (consistent ? 1.0 : 1e-3);
    vec3 color = clamp(texelFetch(target_color, ivec3(pixel, bake_pages.y), 0).rgb, -SAMPLE_LIMIT, SAMPLE_LIMIT);
    add(base, w);
    for (int c = 0; c < 3; ++c) {
        add(base + 1 + c, w * color[c]);
    }
#ifdef NORMALS
    vec3 n = texelFetch(target_color, ivec3(pixel, bake_pages.z), 0).rgb * 2.0 - 1.0;
    vec3 t = to_tangent_space(n, triangle, uv.zw);
    for (int c = 0; c < 3; ++c) {
        add(base + 4 + c, w * t[c]);
    }
#endif
}
