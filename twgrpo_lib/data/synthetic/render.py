"""Frames and H.264 videos of a simulation.

Anti-aliasing is analytic: each pixel's coverage is ``clip(0.5 - d, 0, 1)`` where ``d`` is the signed
distance in pixels from the pixel centre to the shape's outline (a one-pixel box filter), so no
supersampling pass is needed. Shapes: cube = square, sphere = disc, cylinder = disc with a dark rim ring
(a cylinder seen from above). Materials: rubber is matt (soft shading), metal has a bright highlight and a
strong gradient. Each object casts a soft shadow on the light floor.

>>> from twgrpo_lib.data.synthetic.sampling import sample_scene
>>> from twgrpo_lib.data.synthetic.physics import simulate
>>> frames = render_frames(simulate(sample_scene(0, "tiny")))
>>> frames.shape, frames.dtype
((32, 64, 64, 3), dtype('uint8'))
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from twgrpo_lib.data.synthetic.physics import Simulation
from twgrpo_lib.data.synthetic.world import COLOURS

FLOOR = np.array([205.0, 203.0, 198.0])
SHADOW_OFFSET = (0.12, 0.18)  # in radii, light from the upper left


def shape_coverage(dx: np.ndarray, dy: np.ndarray, radius_px: float, shape: str) -> np.ndarray:
    """Pixel coverage of a shape centred at (0, 0); dx, dy are pixel-centre offsets in pixels."""
    if shape == "cube":
        half = radius_px * 0.86  # a square of about the disc's area
        qx, qy = np.abs(dx) - half, np.abs(dy) - half
        distance = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
    else:
        distance = np.hypot(dx, dy) - radius_px
    return np.clip(0.5 - distance, 0.0, 1.0)


def _shade(dx: np.ndarray, dy: np.ndarray, radius_px: float, colour, shape: str, material: str) -> np.ndarray:
    """RGB (0..255 floats) of the object's surface at the given pixel offsets."""
    u, v = dx / radius_px, dy / radius_px  # -1..1 across the object
    base = np.asarray(colour, dtype=np.float32)
    light = np.exp(-((u + 0.35) ** 2 + (v + 0.35) ** 2) / 0.9)  # broad light from the upper left
    if material == "metal":
        tone = (0.45 + 0.75 * light)[..., None] * base
        spot = np.exp(-((u + 0.3) ** 2 + (v + 0.3) ** 2) / 0.04)[..., None]
        rgb = tone * (1 - 0.8 * spot) + 255.0 * 0.8 * spot
    else:
        rgb = (0.78 + 0.25 * light)[..., None] * base
    if shape == "cylinder":  # the top rim: a dark ring at about 60% of the radius
        ring = np.clip(1.0 - np.abs(np.hypot(dx, dy) - 0.6 * radius_px) / max(0.9, 0.12 * radius_px), 0, 1)
        rgb = rgb * (1 - 0.6 * ring[..., None])
    return np.clip(rgb, 0, 255)


def render_at(sim: Simulation, times, chunk: int = 32) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of the scene at the given times (seconds), ``chunk`` frames at a time."""
    times = np.asarray(times, dtype=float)
    return np.concatenate([_render_chunk(sim, times[k:k + chunk]) for k in range(0, len(times), chunk)])


def _render_chunk(sim: Simulation, times: np.ndarray) -> np.ndarray:
    """Each object's coverage and shading are computed for all frames at once in a square patch around its
    centre; the canvas is padded by a patch so that patches never need clipping.
    """
    preset = sim.scene.preset
    scale = preset.pixels_per_unit
    radius_px = preset.radius * scale
    reach = int(np.ceil(radius_px * 1.3)) + 2
    size = 2 * reach  # patch side in pixels
    canvas = np.empty((len(times), preset.height + 2 * size, preset.width + 2 * size, 3), dtype=np.float32)
    canvas[:] = FLOOR
    steps = np.arange(size)
    for pass_ in ("shadow", "object"):
        for i in sim.present():
            obj = sim.scene.objects[i]
            centre = np.array([sim.position(i, t) for t in times]) * scale  # (T, 2) pixels
            if pass_ == "shadow":
                centre = centre + np.array(SHADOW_OFFSET) * radius_px
            # patch origin in padded canvas coordinates, clipped; offsets stay exact, so a far-away
            # object simply gets zero coverage
            ox = np.clip(np.floor(centre[:, 0]).astype(int) - reach + size, 0, preset.width + size)  # (T,)
            oy = np.clip(np.floor(centre[:, 1]).astype(int) - reach + size, 0, preset.height + size)
            dx = (ox[:, None] - size + steps + 0.5 - centre[:, :1]).astype(np.float32)[:, None, :]  # (T, 1, P)
            dy = (oy[:, None] - size + steps + 0.5 - centre[:, 1:]).astype(np.float32)[:, :, None]  # (T, P, 1)
            if pass_ == "shadow":
                keep = 1 - 0.35 * shape_coverage(dx, dy, radius_px * 1.05, obj.shape) ** 2  # (T, P, P)
                paint = None
            else:
                dx, dy = np.broadcast_arrays(dx, dy)
                alpha = shape_coverage(dx, dy, radius_px, obj.shape)  # (T, P, P)
                keep = 1 - alpha
                paint = _shade(dx, dy, radius_px, COLOURS[obj.colour], obj.shape, obj.material) * alpha[..., None]
            for t in range(len(times)):  # composite: canvas = canvas * keep + paint
                region = canvas[t, oy[t]:oy[t] + size, ox[t]:ox[t] + size]
                region *= keep[t][..., None]
                if paint is not None:
                    region += paint[t]
    visible = canvas[:, size:size + preset.height, size:size + preset.width]
    return (np.clip(visible, 0, 255) + 0.5).astype(np.uint8)  # round to nearest


def render_frames(sim: Simulation, frames: int | None = None) -> np.ndarray:
    """The first ``frames`` frames (all by default) as a (T, H, W, 3) uint8 array; frame k is at t = k / fps."""
    preset = sim.scene.preset
    count = preset.frames if frames is None else frames
    return render_at(sim, np.arange(count) / preset.fps)


def write_mp4(frames: np.ndarray, path: str | Path, fps: int, crf: int = 18) -> None:
    """Encode (T, H, W, 3) uint8 frames as H.264 (yuv420p) MP4 with PyAV; H and W must be even."""
    import av

    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"write_mp4 {path}: H.264 with yuv420p needs even sizes, got {w}x{h}")
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def save_png(frame: np.ndarray, path: str | Path, scale: int = 1) -> None:
    """Write one (H, W, 3) frame as PNG, optionally enlarged ``scale`` times (nearest neighbour)."""
    from PIL import Image

    image = Image.fromarray(frame)
    if scale > 1:
        image = image.resize((frame.shape[1] * scale, frame.shape[0] * scale), Image.NEAREST)
    image.save(path)
