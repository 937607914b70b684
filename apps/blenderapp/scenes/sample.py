"""The shipped sample scene, built from code in Blender's Python (nothing downloaded, no .blend file).

A checkered floor, three spheres (diffuse, glossy, glass), a cube, an area light, a sun and a camera that
orbits the scene from frame to frame: enough light paths for Cycles noise and reflections to make
verification meaningful, and a different picture in every frame. Run by the render worker
(`blender_job.py`, with Blender's `bpy` module loaded), which calls `build()`.
"""

from typing import Any

import bpy  # type: ignore[import-not-found]

ORBIT_PER_FRAME = 0.3


def _material(
    name: str,
    color: tuple[float, float, float],
    roughness: float = 0.5,
    metallic: float = 0.0,
    transmission: float = 0.0,
) -> Any:
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    shader = material.node_tree.nodes["Principled BSDF"]
    shader.inputs["Base Color"].default_value = (*color, 1.0)
    shader.inputs["Roughness"].default_value = roughness
    shader.inputs["Metallic"].default_value = metallic
    shader.inputs["Transmission Weight"].default_value = transmission
    return material


def _checker(name: str) -> Any:
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    nodes = material.node_tree.nodes
    checker = nodes.new("ShaderNodeTexChecker")
    checker.inputs["Scale"].default_value = 8.0
    checker.inputs["Color1"].default_value = (0.8, 0.8, 0.75, 1.0)
    checker.inputs["Color2"].default_value = (0.1, 0.12, 0.15, 1.0)
    material.node_tree.links.new(checker.outputs["Color"], nodes["Principled BSDF"].inputs["Base Color"])
    return material


def _orbit(camera: Any) -> None:
    """Turn the camera about the scene's vertical axis by ORBIT_PER_FRAME radians a frame (frame 1 is the
    unturned view), so no two nearby frames are the same picture."""
    bpy.ops.object.empty_add(location=(0.0, 0.0, 0.0))
    pivot = bpy.context.object
    camera.parent = pivot
    for frame in (1, 2):
        pivot.rotation_euler = (0.0, 0.0, ORBIT_PER_FRAME * (frame - 1))
        pivot.keyframe_insert(data_path="rotation_euler", index=2, frame=frame)
    for curve in pivot.animation_data.action.fcurves:
        curve.extrapolation = "LINEAR"
        for point in curve.keyframe_points:
            point.interpolation = "LINEAR"


def build() -> None:
    """Replace the factory scene's objects with the sample scene."""
    scene = bpy.context.scene
    for obj in list(scene.objects):
        bpy.data.objects.remove(obj, do_unlink=True)

    bpy.ops.mesh.primitive_plane_add(size=20, location=(0, 0, 0))
    bpy.context.object.data.materials.append(_checker("floor"))

    spheres = [
        ((-2.2, 0.0, 1.0), _material("red", (0.8, 0.1, 0.08), roughness=0.6)),
        ((0.0, 0.8, 1.0), _material("mirror", (0.9, 0.9, 0.9), roughness=0.05, metallic=1.0)),
        ((2.2, 0.0, 1.0), _material("glass", (0.9, 0.95, 1.0), roughness=0.0, transmission=1.0)),
    ]
    for location, material in spheres:
        bpy.ops.mesh.primitive_uv_sphere_add(radius=1.0, location=location, segments=48, ring_count=24)
        bpy.ops.object.shade_smooth()
        bpy.context.object.data.materials.append(material)

    bpy.ops.mesh.primitive_cube_add(size=1.2, location=(1.0, -2.0, 0.6), rotation=(0, 0, 0.6))
    bpy.context.object.data.materials.append(_material("blue", (0.1, 0.25, 0.8), roughness=0.3))

    bpy.ops.object.light_add(type="AREA", location=(-3.0, -3.0, 5.0))
    area = bpy.context.object
    area.data.energy = 900.0
    area.data.size = 3.0
    area.rotation_euler = (0.6, -0.4, 0.0)

    bpy.ops.object.light_add(type="SUN", location=(0, 0, 10))
    sun = bpy.context.object
    sun.data.energy = 2.0
    sun.rotation_euler = (0.5, 0.3, 1.2)

    bpy.ops.object.camera_add(location=(0.0, -8.5, 3.6), rotation=(1.2, 0.0, 0.0))
    scene.camera = bpy.context.object
    _orbit(scene.camera)

    world = bpy.data.worlds.new("sky")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.35, 0.45, 0.6, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.6
    scene.world = world
