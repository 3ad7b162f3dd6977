"""What Blender makes of an exported LOD: `blender -b --python benchmarks/blender_import.py -- FILE`
(FILE .obj or .glb). Prints each object, each material's node links (which image feeds
which socket) and the Principled BSDF's unlinked specular/roughness/metallic, and each
armature's bone count. Checked with Debian's Blender 3.4.1 (README, Limits)."""

import sys

import bpy
import numpy

numpy.bool = bool  # Blender 3.4's glTF importer still uses np.bool, gone from numpy 1.24

bpy.ops.wm.read_factory_settings(use_empty=True)
path = sys.argv[sys.argv.index("--") + 1]
if path.lower().endswith(".obj"):
    bpy.ops.wm.obj_import(filepath=path)
else:
    bpy.ops.import_scene.gltf(filepath=path)
for obj in bpy.context.scene.objects:
    faces = len(obj.data.polygons) if obj.type == "MESH" else ""
    print("OBJECT", obj.name, obj.type, faces, [modifier.type for modifier in obj.modifiers])
for material in bpy.data.materials:
    print("MATERIAL", material.name)
    if not material.use_nodes:
        continue
    for link in material.node_tree.links:
        image = getattr(link.from_node, "image", None)
        print("  LINK", link.from_node.bl_idname, image.name if image else "", "->", link.to_node.bl_idname,
              link.to_socket.name)
    bsdf = material.node_tree.nodes.get("Principled BSDF")
    for name in ("Specular", "Roughness", "Metallic"):
        socket = bsdf.inputs.get(name) if bsdf else None
        if socket is not None and not socket.is_linked:
            print("  ", name, socket.default_value)
for armature in bpy.data.armatures:
    print("ARMATURE", armature.name, len(armature.bones))
