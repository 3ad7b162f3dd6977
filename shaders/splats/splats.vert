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
    conic = f.conic;
    centre = f.centre;
    radius = f.radius;
    color_opacity = vec4(splat_color(splat, side), splat_opacity(splat, side));
    vec2 corner = f.centre + f.radius * CORNERS[gl_VertexID % 6];
#ifdef PANDA_CAMERA
    // Depth-tested against the scene (no depth writes): the splat's centre depth.
    vec4 clip = model_view_projection * vec4(splat_mean(splat, side), 1.0);
    gl_Position = vec4(corner / viewport * 2.0 - 1.0, clamp(clip.z / clip.w, -1.0, 1.0), 1.0);
#else
    gl_Position = vec4(corner / viewport * 2.0 - 1.0, 0.0, 1.0);
#endif
}
