#version 430
#extension GL_ARB_shader_viewport_layer_array : enable
// The box [-1, 1]^3 whose fragments march the volume: 6 faces of 2 triangles, pulled by
// gl_VertexID (optimizer.gpu.pulled_geometry). Only the faces turned away from the eye are
// drawn (the others collapse to a point), so every pixel whose ray meets the box gets one
// fragment, also with the eye inside the box.
#include "view.glsl"

#ifndef REFERENCE_DRAW
#define REFERENCE_DRAW 0  // 1: the reference (page target_page), else theta+- (page side)
#endif

#ifdef PANDA_CAMERA
uniform mat4 p3d_ModelViewMatrixInverse;
#else
uniform vec4 camera_position;  // the eye in model space
#if REFERENCE_DRAW
uniform int target_page;       // the reference's page
#else
uniform int side;              // theta+ (0) / theta- (1), also the page
#endif
#endif

out vec3 box_position;  // model space, on the face

const vec3 NORMALS[6] = vec3[6](vec3(1, 0, 0), vec3(-1, 0, 0), vec3(0, 1, 0), vec3(0, -1, 0),
                                vec3(0, 0, 1), vec3(0, 0, -1));
const vec2 CORNERS[6] = vec2[6](vec2(-1, -1), vec2(1, -1), vec2(1, 1), vec2(-1, -1), vec2(1, 1), vec2(-1, 1));

void main() {
    int face = gl_VertexID / 6;
    vec3 normal = NORMALS[face];
    // Two axes spanning the face: a permutation of the other two coordinates.
    vec3 u = normal.x != 0.0 ? vec3(0, 1, 0) : vec3(1, 0, 0);
    vec3 v = cross(normal, u);
    vec2 corner = CORNERS[gl_VertexID % 6];
    box_position = normal + corner.x * u + corner.y * v;
#ifdef PANDA_CAMERA
    vec3 eye = (p3d_ModelViewMatrixInverse * vec4(0.0, 0.0, 0.0, 1.0)).xyz;
#else
    vec3 eye = camera_position.xyz;
#if REFERENCE_DRAW
    gl_Layer = target_page;
#else
    gl_Layer = side;
#endif
#endif
    bool facing_eye = dot(normal, eye - normal) > 0.0;
    gl_Position = facing_eye ? vec4(0.0, 0.0, 2.0, 1.0) : project(box_position);
}
