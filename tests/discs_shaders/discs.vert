#version 430
#extension GL_ARB_shader_viewport_layer_array : require
// Opaque screen-facing discs, one instanced quad each (gl_InstanceID: the disc), their
// centres and colours pulled from P's interleaved copies by side.
#include "view.glsl"

uniform samplerBuffer centres;  // [disc][side]: .xy
uniform samplerBuffer colors;   // [disc][side]: .rgb
uniform float radius;
uniform int disc_count;
uniform int side;

flat out int disc;
flat out vec3 disc_color;
out vec2 local;                 // in units of the radius; the disc is |local| <= 1

const vec2 CORNERS[6] = vec2[6](vec2(-1.0, -1.0), vec2(1.0, -1.0), vec2(1.0, 1.0),
                                vec2(-1.0, -1.0), vec2(1.0, 1.0), vec2(-1.0, 1.0));

void main() {
    disc = gl_InstanceID;
    vec2 centre = texelFetch(centres, 2 * disc + side).xy;
    disc_color = texelFetch(colors, 2 * disc + side).rgb;
    local = CORNERS[gl_VertexID % 6];
    // A fixed depth per disc: where two overlap, the lower index is in front.
    float depth = 0.2 + 0.6 * float(disc) / float(disc_count);
    gl_Position = project(vec3(centre + radius * local, depth));
    gl_Layer = side;
}
