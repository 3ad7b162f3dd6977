"""The exact-gradient peer of the LOD job (issue 25): PyTorch + nvdiffrast, run on a CUDA
GPU, never a dependency of the product (nvdiffrast's licence does not allow shipping it;
benchmarks/peer_lod/build_nvdiffrast.sh builds it from a git-ignored copy at run time).

It starts from the job's own decimate-and-bake LOD (job.npz from job.py: the same
triangles, atlas, positions and 8-bit maps) and optimises, with Adam on exact gradients,
the welded vertex positions, the albedo (sRGB-encoded, as the job's) and the tangent-space
normal map, under the job's image formation: Lambert plus ambient in linear colour, the
normal map read in the frame shaders/surface/surface.frag reads it (tangent along +u,
bitangent n x t times the UV handedness), two-sided, a mid-gray background; vertex
normals and tangent frames recomputed from the positions every step, as the job's bakes
do. Per step: 4 views of 512^2 from the job's own training stream, the reference (the
source, same shading) drawn by nvdiffrast too; loss = colour (antialiased, so silhouettes
get gradients) + coverage (antialiased masks) + the job's truncated depth term; maps
sampled trilinearly with mipmaps. Learning rates decay geometrically to a tenth over the
run, which lasts ``--seconds`` of wall time (after a few warm-up steps, not counted).

    python benchmarks/peer_lod/peer.py DIR/job.npz --seconds 30 --out peer.npz

writes the LOD (positions welded, unit frame; maps as floats in [0, 1]) and prints one
JSON line: steps, ms per step, its own held-out PSNR (8-bit sRGB, over covered pixels,
its renderer) at the start and the end.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
import nvdiffrast.torch as dr

DEPTH_WEIGHT = 1024.0  # the job's (LodSettings.depth_weight, depth_limit), unit radii
DEPTH_LIMIT = 0.02


def srgb_to_linear(c):
    return torch.where(c > 0.04045, ((c.clamp(min=0.0) + 0.055) / 1.055) ** 2.4, c / 12.92)


def linear_to_srgb8(c):
    c = c.clamp(0.0, 1.0)
    s = torch.where(c > 0.0031308, 1.055 * c.clamp(min=1e-8) ** (1.0 / 2.4) - 0.055, 12.92 * c)
    return torch.round(s * 255.0)


def normalize(v):
    return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-12)


class Scene:
    def __init__(self, data, device, resolution: int):
        t = lambda key, dtype=torch.float32: torch.as_tensor(np.asarray(data[key]), dtype=dtype, device=device)
        self.glctx = dr.RasterizeCudaContext(device=device)
        self.resolution = resolution
        self.background = t("background")
        # The source, drawn as the reference.
        self.src_pos, self.src_nrm, self.src_uv, self.src_col = (t(k) for k in (
            "source_positions", "source_normals", "source_uvs", "source_colors"))
        self.src_tri = t("source_triangles", torch.int32)
        self.src_mat = torch.cat([torch.full((1,), -1, device=device, dtype=torch.int64),
                                  t("source_material", torch.int64)])
        self.src_tex = []
        k = 0
        while f"source_texture_{k}" in data:
            self.src_tex.append(t(f"source_texture_{k}")[None].contiguous())
            k += 1
        # The LOD's topology.
        self.position_index = t("position_index", torch.int64)
        self.corners = t("corners", torch.int64)
        self.tri = t("triangles", torch.int32)
        self.tri64 = self.tri.long()
        self.uvs = t("uvs")

    # --- the two surfaces ---------------------------------------------------------------
    @staticmethod
    def clip(positions, matrices):
        homogeneous = torch.cat([positions, torch.ones_like(positions[:, :1])], dim=1)
        return torch.einsum("vj,bij->bvi", homogeneous, matrices).contiguous()

    @staticmethod
    def facing(clip, tri):
        """+1 where a triangle faces the camera (counter-clockwise on screen), else -1;
        index 0 is the background."""
        ndc = clip[..., :2] / clip[..., 3:4]
        a, b, c = (ndc[:, tri[:, k].long()] for k in range(3))
        area = (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])
        sign = torch.where(area > 0, 1.0, -1.0)
        return torch.cat([torch.ones_like(sign[:, :1]), sign], dim=1)

    def shade(self, albedo, normal, rast, clip, tri, lights):
        ids = rast[..., 3].long()
        sign = torch.gather(self.facing(clip, tri), 1, ids.flatten(1)).view_as(ids)[..., None]
        normal = normal * sign
        l = lights[:, None, None, :3]
        ambient = lights[:, None, None, 3:4]
        n_dot_l = (normal * l).sum(-1, keepdim=True).clamp(min=0.0)
        color = albedo * (ambient + (1.0 - ambient) * n_dot_l)
        covered = (ids > 0)[..., None]
        return torch.where(covered, color, self.background), covered.float()

    def reference(self, matrices, lights):
        r = self.resolution
        clip = self.clip(self.src_pos, matrices)
        rast, rast_db = dr.rasterize(self.glctx, clip, self.src_tri, (r, r))
        uv, uv_da = dr.interpolate(self.src_uv[None], rast, self.src_tri, rast_db=rast_db, diff_attrs="all")
        normal, _ = dr.interpolate(self.src_nrm[None], rast, self.src_tri)
        color, _ = dr.interpolate(self.src_col[None], rast, self.src_tri)
        depth, _ = dr.interpolate(clip[..., 3:4].contiguous(), rast, self.src_tri)
        material = self.src_mat[rast[..., 3].long()][..., None]
        albedo = torch.ones_like(color)
        for k, texture in enumerate(self.src_tex):
            if texture.shape[1] > 1 or texture.shape[2] > 1:
                sampled = dr.texture(texture, uv, uv_da, filter_mode="linear-mipmap-linear", boundary_mode="wrap")
            else:
                sampled = texture[0, 0, 0].expand_as(albedo)
            albedo = torch.where(material == k, sampled, albedo)
        shaded, covered = self.shade(color * albedo, normalize(normal), rast, clip, self.src_tri, lights)
        shaded = dr.antialias(shaded.contiguous(), rast, clip, self.src_tri)
        coverage = dr.antialias(covered.contiguous(), rast, clip, self.src_tri)
        return shaded, coverage, depth, covered

    def frames(self, welded):
        """Per split vertex: normal, tangent and the bitangent the shader bends along
        (optimizer.lod.geometry: vertex_normals, tangent_frames)."""
        c = self.corners
        face = torch.cross(welded[c[:, 1]] - welded[c[:, 0]], welded[c[:, 2]] - welded[c[:, 0]], dim=1)
        accumulated = torch.zeros_like(welded)
        for k in range(3):
            accumulated = accumulated.index_add(0, c[:, k], face)
        normals = normalize(accumulated)[self.position_index]
        p = welded[self.position_index]
        tri = self.tri64
        e1, e2 = p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 0]]
        d1, d2 = self.uvs[tri[:, 1]] - self.uvs[tri[:, 0]], self.uvs[tri[:, 2]] - self.uvs[tri[:, 0]]
        det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
        scale = torch.where(det.abs() > 1e-20, 1.0 / torch.where(det == 0, torch.ones_like(det), det),
                            torch.zeros_like(det))[:, None]
        face_tangent = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) * scale
        face_binormal = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) * scale
        tangents = torch.zeros_like(p)
        binormals = torch.zeros_like(p)
        for k in range(3):
            tangents = tangents.index_add(0, tri[:, k], face_tangent)
            binormals = binormals.index_add(0, tri[:, k], face_binormal)
        tangents = normalize(tangents - normals * (normals * tangents).sum(1, keepdim=True))
        bitangent = torch.cross(normals, tangents, dim=1)
        handedness = torch.where((bitangent * binormals).sum(1, keepdim=True) < 0, -1.0, 1.0)
        return normals, tangents, bitangent * handedness

    def lod(self, welded, albedo_map, normal_map, matrices, lights):
        r = self.resolution
        positions = welded[self.position_index]
        clip = self.clip(positions, matrices)
        rast, rast_db = dr.rasterize(self.glctx, clip, self.tri, (r, r))
        normals, tangents, bitangents = self.frames(welded)
        uv, uv_da = dr.interpolate(self.uvs[None], rast, self.tri, rast_db=rast_db, diff_attrs="all")
        frame, _ = dr.interpolate(torch.cat([normals, tangents, bitangents], dim=1)[None], rast, self.tri)
        depth, _ = dr.interpolate(clip[..., 3:4].contiguous(), rast, self.tri)
        albedo = srgb_to_linear(dr.texture(albedo_map[None], uv, uv_da, filter_mode="linear-mipmap-linear",
                                           boundary_mode="clamp"))
        bend = dr.texture(normal_map[None], uv, uv_da, filter_mode="linear-mipmap-linear",
                          boundary_mode="clamp") * 2.0 - 1.0
        n, tangent, bitangent = normalize(frame[..., 0:3]), normalize(frame[..., 3:6]), normalize(frame[..., 6:9])
        normal = normalize(tangent * bend[..., 0:1] + bitangent * bend[..., 1:2] + n * bend[..., 2:3])
        shaded, covered = self.shade(albedo, normal, rast, clip, self.tri, lights)
        shaded = dr.antialias(shaded.contiguous(), rast, clip, self.tri)
        coverage = dr.antialias(covered.contiguous(), rast, clip, self.tri)
        return shaded, coverage, depth, covered


def held_out_psnr(scene, state, matrices, lights) -> float:
    """Mean over views of PSNR (8-bit sRGB) over pixels either covers: the job's metric,
    drawn by this renderer."""
    scores = []
    with torch.no_grad():
        for b in range(len(matrices)):
            m, l = matrices[b:b + 1], lights[b:b + 1]
            ref, _, _, ref_covered = scene.reference(m, l)
            lod, _, _, lod_covered = scene.lod(*state, m, l)
            covered = (ref_covered[..., 0] > 0) | (lod_covered[..., 0] > 0)
            difference = (linear_to_srgb8(lod) - linear_to_srgb8(ref))[covered]
            mse = float((difference ** 2).mean()) if difference.numel() else 0.0
            scores.append(100.0 if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse))
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("job")
    parser.add_argument("--seconds", type=float, required=True, help="wall time of the steps")
    parser.add_argument("--out", required=True)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--position-lr", type=float, default=1e-3)
    parser.add_argument("--map-lr", type=float, default=3e-3)
    parser.add_argument("--coverage-weight", type=float, default=1.0)
    parser.add_argument("--depth-weight", type=float, default=DEPTH_WEIGHT)
    parser.add_argument("--final-lr-scale", type=float, default=0.1)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--fixed-frames", action="store_true",
                        help="vertex normals and tangent frames of the start positions throughout (as the job's "
                             "steps draw between bakes), not recomputed from the positions each step")
    args = parser.parse_args()
    device = torch.device("cuda")
    data = dict(np.load(args.job))
    scene = Scene(data, device, args.resolution)
    if args.fixed_frames:
        start_frames = tuple(f.detach() for f in scene.frames(torch.as_tensor(data["start_positions"], device=device)))
        scene.frames = lambda welded: start_frames
    welded = torch.tensor(data["start_positions"], device=device, requires_grad=True)
    albedo = torch.tensor(data["start_albedo"] / np.float32(255.0), device=device, requires_grad=True)
    normal_map = torch.tensor(data["start_normal_map"] / np.float32(255.0), device=device, requires_grad=True)
    state = (welded, albedo, normal_map)
    held = (torch.as_tensor(data["held_views"], device=device), torch.as_tensor(data["held_lights"], device=device))
    train_views = torch.as_tensor(data["train_views"], device=device)
    train_lights = torch.as_tensor(data["train_lights"], device=device)
    start_psnr = held_out_psnr(scene, state, *held)
    optimizer = torch.optim.Adam([{"params": [welded], "lr": args.position_lr},
                                  {"params": [albedo, normal_map], "lr": args.map_lr}], betas=(0.9, 0.999))
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    initial = [p.detach().clone() for p in state]

    def step(index: int, fraction: float) -> None:
        scale = args.final_lr_scale ** min(fraction, 1.0)
        for group, lr in zip(optimizer.param_groups, base_lrs):
            group["lr"] = lr * scale
        first = (index * args.views) % len(train_views)
        m, l = train_views[first:first + args.views], train_lights[first:first + args.views]
        with torch.no_grad():
            ref, ref_coverage, ref_depth, ref_covered = scene.reference(m, l)
        lod, coverage, depth, covered = scene.lod(welded, albedo, normal_map, m, l)
        both = covered * ref_covered
        depth_term = torch.clamp((depth - ref_depth).abs(), max=DEPTH_LIMIT) ** 2 * both
        loss = ((lod - ref) ** 2).sum(-1).mean() + args.coverage_weight * ((coverage - ref_coverage) ** 2).mean() \
            + args.depth_weight * depth_term.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            albedo.clamp_(0.0, 1.0)
            normal_map.clamp_(0.0, 1.0)

    for index in range(args.warmup_steps):  # compile and allocate, then start again from the start
        step(index, 0.0)
    with torch.no_grad():
        for p, value in zip(state, initial):
            p.copy_(value)
    optimizer = torch.optim.Adam([{"params": [welded], "lr": args.position_lr},
                                  {"params": [albedo, normal_map], "lr": args.map_lr}], betas=(0.9, 0.999))
    torch.cuda.synchronize()
    started = time.perf_counter()
    steps, elapsed = 0, 0.0
    while elapsed < args.seconds:
        step(steps, elapsed / args.seconds)
        steps += 1
        if steps % 8 == 0:
            torch.cuda.synchronize()
            elapsed = time.perf_counter() - started
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    end_psnr = held_out_psnr(scene, state, *held)
    np.savez_compressed(args.out, positions=welded.detach().cpu().numpy(),
                        albedo=albedo.detach().cpu().numpy(), normal_map=normal_map.detach().cpu().numpy())
    print(json.dumps({"peer": args.out, "seconds": elapsed, "steps": steps, "ms_per_step": 1000.0 * elapsed / steps,
                      "psnr_own_start": start_psnr, "psnr_own_end": start_psnr if steps == 0 else end_psnr,
                      **{k: v for k, v in vars(args).items() if k not in ("job", "out")},
                      "gpu": torch.cuda.get_device_name()}), flush=True)


if __name__ == "__main__":
    main()
