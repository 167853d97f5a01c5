"""What a mini-CLEVRER scene is: object attributes, video presets and the initial state at t = 0.

World coordinates are scene units with the origin at the top-left corner of the frame, x to the right and
y downwards (image convention), so "upper" means small y. Every object is a disc of radius
``preset.radius`` for the physics; the renderer draws cubes as squares, spheres as discs and cylinders as
discs with a rim.

>>> scene = Scene(PRESETS["tiny"], (SceneObject("red", "cube", "metal", (1.0, 2.0), (0.5, 0.0)),))
>>> scene.objects[0].name, round(scene.preset.duration, 3), scene.preset.pixels_per_unit
('red cube', 3.875, 16.0)
"""

from __future__ import annotations

from dataclasses import dataclass

# CLEVRER's attribute values; RGB in 0..255 chosen so that the eight colours stay apart at 64x64.
COLOURS: dict[str, tuple[int, int, int]] = {
    "gray": (110, 110, 110),
    "red": (200, 30, 30),
    "blue": (40, 80, 230),
    "green": (30, 140, 40),
    "brown": (135, 80, 30),
    "cyan": (40, 215, 215),
    "purple": (140, 40, 200),
    "yellow": (250, 225, 40),
}
SHAPES: tuple[str, ...] = ("cube", "sphere", "cylinder")
MATERIALS: tuple[str, ...] = ("rubber", "metal")


@dataclass(frozen=True)
class Preset:
    """Video size and timing. Frame k shows the scene at t = k / fps; the simulation runs to the last frame."""

    name: str
    width: int  # pixels, even (H.264 with yuv420p)
    height: int  # pixels, even
    frames: int
    fps: int
    world_height: float = 4.0  # scene units; the world's width follows the frame's aspect ratio
    radius: float = 0.35  # scene units, every object

    @property
    def world_width(self) -> float:
        return self.world_height * self.width / self.height

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame; events after it are never shown, so never logged."""
        return (self.frames - 1) / self.fps

    @property
    def pixels_per_unit(self) -> float:
        return self.height / self.world_height


PRESETS: dict[str, Preset] = {
    # CPU training and CI: 32 frames of 64x64 at 8 fps (4 s)
    "tiny": Preset("tiny", 64, 64, 32, 8),
    # closer to CLEVRER (128 frames of 480x320, about 5 s)
    "default": Preset("default", 480, 320, 128, 25),
}


@dataclass(frozen=True)
class SceneObject:
    """One object and its state at t = 0 (it may start outside the frame and enter later)."""

    colour: str
    shape: str
    material: str
    position: tuple[float, float]  # scene units
    velocity: tuple[float, float]  # scene units per second

    def __post_init__(self):
        for field, value, allowed in (("colour", self.colour, COLOURS), ("shape", self.shape, SHAPES),
                                      ("material", self.material, MATERIALS)):
            if value not in allowed:
                raise ValueError(f"SceneObject.{field}: {value!r} is not one of {sorted(allowed)}")

    @property
    def name(self) -> str:
        """Colour and shape, unique within a scene because colours are drawn without replacement."""
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Scene:
    """The initial state of a video: preset (size, timing) and objects."""

    preset: Preset
    objects: tuple[SceneObject, ...]
    seed: tuple[int, ...] = ()  # the random key it was drawn from, if any

    def inside_view(self, x: float, y: float) -> bool:
        """Is any part of a disc centred at (x, y) inside the frame?"""
        r = self.preset.radius
        return -r <= x <= self.preset.world_width + r and -r <= y <= self.preset.world_height + r
