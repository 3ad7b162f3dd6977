// The view of the current step, shared by every render pass through one PTA that the
// host rewrites once per step (optimizer/render.py: View).
uniform mat4 model_view_projection;

vec4 project(vec3 position) {
    return model_view_projection * vec4(position, 1.0);
}
