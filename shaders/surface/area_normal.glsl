// The area-weighted normal of a welded vertex: the sum of the cross products
// of its triangles' edges (twice their areas), over the positions of one side.
uniform isamplerBuffer adjacency_offsets;    // per welded vertex: first entry; one more at the end
uniform isamplerBuffer adjacency_triangles;  // per entry: a triangle around it
uniform isamplerBuffer welded_corners;       // 3 welded vertices per triangle

vec3 fetch_position(samplerBuffer positions, int side, int vertex) {
    int base = side * (textureSize(positions) / 2) + 3 * vertex;
    return vec3(texelFetch(positions, base).x, texelFetch(positions, base + 1).x, texelFetch(positions, base + 2).x);
}

vec3 area_normal(samplerBuffer positions, int side, int vertex) {
    vec3 sum = vec3(0.0);
    int end = texelFetch(adjacency_offsets, vertex + 1).x;
    for (int e = texelFetch(adjacency_offsets, vertex).x; e < end; ++e) {
        int triangle = texelFetch(adjacency_triangles, e).x;
        vec3 a = fetch_position(positions, side, texelFetch(welded_corners, 3 * triangle).x);
        vec3 b = fetch_position(positions, side, texelFetch(welded_corners, 3 * triangle + 1).x);
        vec3 c = fetch_position(positions, side, texelFetch(welded_corners, 3 * triangle + 2).x);
        sum += cross(b - a, c - a);
    }
    float length_ = length(sum);
    return length_ > 1e-20 ? sum / length_ : vec3(0.0);
}
