#version 430
#extension GL_ARB_shader_viewport_layer_array : require
// Splats as instanced quads by vertex pulling: instance i draws the splat of rank i in
// this step's depth order (sort_keys.comp, sort_step.comp), front to back; its corners
// span the 3-sigma square of its projected Gaussian. Parameters come from P's copies, by
// side. BACK_TO_FRONT (a game's camera, game/splats.py): the same splats in reverse
// order, for "over" blending onto a scene already drawn.
#include "view.glsl"
#include "splat.glsl"

uniform isamplerBuffer order;  // rank -> splat
uniform int side;
#ifndef BACK_TO_FRONT
// Each drawn splat's footprint as this render drew it, for G (gradient.comp): per (side,
// splat) two texels, (centre, conic.xy) and (conic.z, radius, opacity, -). Written by
// the quad's first vertex, so G need not project the splats again per pixel.
layout(rgba32f) uniform writeonly imageBuffer footprints;
#endif

flat out int rank;
flat out vec3 conic;
flat out vec2 centre;
flat out float radius;
flat out vec4 color_opacity;

const vec2 CORNERS[6] = vec2[6](vec2(-1.0, -1.0), vec2(1.0, -1.0), vec2(1.0, 1.0),
                                vec2(-1.0, -1.0), vec2(1.0, 1.0), vec2(-1.0, 1.0));

void main() {
#ifdef BACK_TO_FRONT
    rank = splat_count - 1 - gl_InstanceID;
#else
    rank = gl_InstanceID;
#endif
    int splat = texelFetch(order, rank).x;
    Footprint f = splat_footprint(splat, side, model_view_projection);
#ifndef PANDA_CAMERA
    gl_Layer = side;
#endif
    if (!f.visible) {
        gl_Position = vec4(2.0, 2.0, 2.0, 1.0);  // outside the clip volume: nothing drawn
        return;
    }
#ifndef BACK_TO_FRONT
    if (gl_VertexID % 6 == 0) {
        imageStore(footprints, 2 * (side * splat_count + splat), vec4(f.centre, f.conic.xy));
        imageStore(footprints, 2 * (side * splat_count + splat) + 1,
                   vec4(f.conic.z, f.radius, splat_opacity(splat, side), 0.0));
    }
#endif
    conic = f.conic;
    centre = f.centre;
    radius = f.radius;
    color_opacity = vec4(splat_color(splat, side), splat_opacity(splat, side));
    vec2 corner = f.centre + f.extent * CORNERS[gl_VertexID % 6];
#ifdef PANDA_CAMERA
    // Depth-tested against the scene (no depth writes): the splat's centre depth.
    vec4 clip = model_view_projection * vec4(splat_mean(splat, side), 1.0);
    gl_Position = vec4(corner / viewport * 2.0 - 1.0, clamp(clip.z / clip.w, -1.0, 1.0), 1.0);
#else
    gl_Position = vec4(corner / viewport * 2.0 - 1.0, 0.0, 1.0);
#endif
}
