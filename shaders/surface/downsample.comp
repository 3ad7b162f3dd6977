#version 430
// Rebuilds one mip level of a texture P wrote (theta+ or theta-), from the level above:
// a 2x2 box filter, one invocation per destination texel. Run for each level in turn
// right after P, so a mipmapped sampler in the render sees the new parameters at every
// level, as it would see an ordinary mipmapped asset texture.
layout(local_size_x = 8, local_size_y = 8) in;

uniform sampler2D source;                              // read at source_level
uniform int source_level;
layout(rgba32f) uniform writeonly image2D destination; // bound at source_level + 1

void main() {
    ivec2 texel = ivec2(gl_GlobalInvocationID.xy);
    if (any(greaterThanEqual(texel, imageSize(destination)))) return;
    ivec2 last = textureSize(source, source_level) - 1;
    vec4 sum = vec4(0.0);
    for (int k = 0; k < 4; ++k) {
        sum += texelFetch(source, min(2 * texel + ivec2(k & 1, k >> 1), last), source_level);
    }
    imageStore(destination, texel, 0.25 * sum);
}
