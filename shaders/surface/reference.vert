#version 430
#ifndef PANDA_CAMERA
#extension GL_ARB_shader_viewport_layer_array : require
#endif
// Draws a reference asset from its own Panda3D vertex data with the same shading as the
// optimised one, so the two are compared like for like.
#include "view.glsl"

#ifndef PANDA_CAMERA
uniform int target_page;  // its page of the optimizer's layered targets
#endif

in vec4 p3d_Vertex;
in vec4 p3d_Color;
in vec3 p3d_Normal;
in vec3 p3d_Tangent;
in vec3 p3d_Binormal;
in vec2 p3d_MultiTexCoord0;

out vec3 surface_color;
out vec2 surface_uv;
out vec3 surface_normal;
out vec3 surface_position;   // model space
out vec3 surface_tangent;
out vec3 surface_binormal;
out vec2 surface_barycentric;

void main() {
    surface_color = p3d_Color.rgb;
    surface_uv = p3d_MultiTexCoord0;
    surface_normal = p3d_Normal;
    surface_tangent = p3d_Tangent;
    surface_binormal = p3d_Binormal;
    surface_barycentric = vec2(0.0);
    surface_position = p3d_Vertex.xyz;
    gl_Position = project(p3d_Vertex.xyz);
#ifndef PANDA_CAMERA
    gl_Layer = target_page;
#endif
}
