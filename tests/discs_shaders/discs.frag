#version 430
// Writes the core's planes (colour; sample: disc + 1, eye depth, the render stamp) and the
// kind's own plane "disc" (.x disc + 1, .yz where in the disc).
uniform int step_state[8];  // [7]: this render's stamp (core/common.glsl)

flat in int disc;
flat in vec3 disc_color;
in vec2 local;

layout(location = 0) out vec4 out_color;
layout(location = 1) out vec4 out_sample;
layout(location = 2) out vec4 out_disc;

void main() {
    if (dot(local, local) > 1.0) discard;
    out_color = vec4(disc_color, 1.0);
    out_sample = vec4(float(disc + 1), 0.0, 1.0 / gl_FragCoord.w, float(step_state[7]));
    out_disc = vec4(float(disc + 1), local, 1.0);
}
