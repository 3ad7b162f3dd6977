// The view of the current step, shared by every render pass through one PTA that the
// host rewrites once per step (optimizer/render.py: View).
// With PANDA_CAMERA the node is drawn by an app's own camera instead (the live LOD in a
// game scene), with the node's transform.
#ifdef PANDA_CAMERA
uniform mat4 p3d_ModelViewProjectionMatrix;
#define model_view_projection p3d_ModelViewProjectionMatrix
#else
uniform mat4 model_view_projection;
#endif

vec4 project(vec3 position) {
    return model_view_projection * vec4(position, 1.0);
}
