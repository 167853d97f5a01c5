"""Dense ground truth per merged video token, computed from the simulation (no rendering, no video decoding).

A Qwen2.5-VL merged video token covers two sampled frames (a temporal patch) and one cell of the frame: with
frames resized to 112 x 112 and a 2 x 2 spatial merge of 14 px patches, a 4 x 4 grid of cells, i.e. 16 x 16
source pixels of a 64 x 64 mini-CLEVRER frame. Tokens come in the processor's order (time, row, column).

Per token, ``LABELS`` (0/1):

- ``colour:<c>``, ``shape:<s>``, ``material:<m>``: an object of that attribute covers the cell in one of
  the token's two frames (at least ``MIN_PIXELS`` source pixels of its anti-aliased coverage, occlusion
  ignored);
- ``moving``: a covering object has a non-zero velocity at that frame; ``object``: any object covers it;
- ``centre``: an object's centre lies in the cell at one of the two frames;
- ``collision``, ``enter``, ``exit``: an event of that kind happens in the token's time span (from the middle
  of the gap to the previous temporal patch to the middle of the gap to the next one; the first and last
  spans are open) at a point in the cell: the contact point of a collision, the point where an entering or
  exiting object crosses the frame's edge (its centre clamped into the frame).

``REGRESSION`` targets (centre offset in the cell in [-1, 1] and velocity in frame widths per second, of the
first object whose centre is in the cell at the first frame of the token, masked where there is none).

>>> from twgrpo_lib.data.synthetic.physics import simulate
>>> from twgrpo_lib.data.synthetic.world import PRESETS, Scene, SceneObject
>>> ball = SceneObject("red", "sphere", "rubber", (0.5, 0.5), (0.0, 0.0))   # top-left cell, at rest
>>> labels, targets, mask = token_labels(simulate(Scene(PRESETS["tiny"], (ball,))), [0.0, 0.5])
>>> labels.shape, [LABELS[k] for k in labels[0].nonzero()[0]]
((16, 19), ['colour:red', 'shape:sphere', 'material:rubber', 'object', 'centre'])
>>> int(labels[:, LABELS.index("object")].sum()), mask.tolist()[:2]
(1, [True, False])
"""

from __future__ import annotations

import numpy as np

from twgrpo_lib.data.synthetic.physics import Simulation
from twgrpo_lib.data.synthetic.render import shape_coverage
from twgrpo_lib.data.synthetic.world import COLOURS, MATERIALS, SHAPES
from twgrpo_lib.data.video import num_sample_frames, sample_indices

GRID = 4  # cells per side: 112 px / (14 px patch x 2 merge)
MIN_PIXELS = 4.0  # source pixels of coverage for an object to count in a cell
EVENTS = ("collision", "enter", "exit")
LABELS: tuple[str, ...] = (*(f"colour:{c}" for c in COLOURS), *(f"shape:{s}" for s in SHAPES),
                           *(f"material:{m}" for m in MATERIALS), "moving", "object", "centre", *EVENTS)
REGRESSION: tuple[str, ...] = ("offset_x", "offset_y", "velocity_x", "velocity_y")


def sampled_times(frames: int, fps: float, sample_fps: float = 2.0, max_frames: int = 16) -> list[float]:
    """Times (s) of the frames ``video.load_video`` samples from a ``frames``-frame video at ``fps``.

    >>> sampled_times(32, 8)
    [0.0, 0.5, 1.125, 1.625, 2.25, 2.75, 3.375, 3.875]
    """
    n = num_sample_frames(frames, fps, fps=sample_fps, max_frames=max_frames)
    return [i / fps for i in sample_indices(frames, n)]


def cell_coverage(sim: Simulation, index: int, t: float, grid: int = GRID) -> np.ndarray:
    """Source pixels of object ``index``'s coverage in each cell at time ``t``, shape (grid, grid)."""
    preset = sim.scene.preset
    scale = preset.pixels_per_unit
    x, y = np.array(sim.position(index, t)) * scale
    dx = np.arange(preset.width) + 0.5 - x                                      # (W,)
    dy = np.arange(preset.height) + 0.5 - y                                     # (H,)
    dx, dy = np.broadcast_arrays(dx[None, :], dy[:, None])                      # (H, W)
    cover = shape_coverage(dx, dy, preset.radius * scale, sim.scene.objects[index].shape)
    return cover.reshape(grid, preset.height // grid, grid, preset.width // grid).sum((1, 3))


def _cell(sim: Simulation, point: tuple[float, float], grid: int) -> tuple[int, int]:
    """(row, column) of the cell holding a world point, clamped into the frame."""
    preset = sim.scene.preset
    col = int(np.clip(point[0] / preset.world_width * grid, 0, grid - 1))
    row = int(np.clip(point[1] / preset.world_height * grid, 0, grid - 1))
    return row, col


def event_point(sim: Simulation, event) -> tuple[float, float]:
    """Where an event happens: a collision's contact point, an entry's or exit's crossing of the frame edge."""
    positions = [sim.position(i, event.time) for i in event.objects]
    if event.kind == "collision":
        return tuple(np.mean(positions, axis=0).tolist())
    preset = sim.scene.preset
    x, y = positions[0]
    return float(np.clip(x, 0, preset.world_width)), float(np.clip(y, 0, preset.world_height))


def token_labels(sim: Simulation, times: list[float], grid: int = GRID):
    """(labels (N, len(LABELS)) uint8, targets (N, 4) float32, mask (N,) bool) for the frames at ``times``.

    ``times`` are the sampled frames' times, an even count; N = len(times) / 2 * grid * grid tokens in the
    processor's order (temporal patch, row, column).
    """
    if len(times) % 2:
        raise ValueError(f"token_labels: need an even number of frame times, got {len(times)}")
    preset = sim.scene.preset
    pairs = [times[k:k + 2] for k in range(0, len(times), 2)]
    labels = np.zeros((len(pairs), grid, grid, len(LABELS)), dtype=np.uint8)
    targets = np.zeros((len(pairs), grid, grid, len(REGRESSION)), dtype=np.float32)
    mask = np.zeros((len(pairs), grid, grid), dtype=bool)
    column = {name: k for k, name in enumerate(LABELS)}
    for p, pair in enumerate(pairs):
        for first, t in enumerate(pair):
            for i in sim.present():
                obj = sim.scene.objects[i]
                covered = cell_coverage(sim, i, t, grid) >= MIN_PIXELS                       # (grid, grid)
                moving = any(sim.velocity(i, t))
                for name in (f"colour:{obj.colour}", f"shape:{obj.shape}", f"material:{obj.material}", "object"):
                    labels[p, :, :, column[name]] |= covered
                if moving:
                    labels[p, :, :, column["moving"]] |= covered
                x, y = sim.position(i, t)
                if not (0 <= x < preset.world_width and 0 <= y < preset.world_height):
                    continue
                row, col = _cell(sim, (x, y), grid)
                labels[p, row, col, column["centre"]] = 1
                if first == 0 and not mask[p, row, col]:
                    cx, cy = (x / preset.world_width * grid) % 1, (y / preset.world_height * grid) % 1
                    vx, vy = sim.velocity(i, t)
                    targets[p, row, col] = (2 * cx - 1, 2 * cy - 1, vx / preset.world_width, vy / preset.world_height)
                    mask[p, row, col] = True
    bounds = [(pairs[k - 1][-1] + pairs[k][0]) / 2 for k in range(1, len(pairs))]  # span edges between patches
    for event in sim.events:
        if event.time > times[-1]:  # after the last frame shown (a cut video)
            continue
        p = int(np.searchsorted(bounds, event.time, side="right"))
        row, col = _cell(sim, event_point(sim, event), grid)
        labels[p, row, col, column[event.kind]] = 1
    n = len(pairs) * grid * grid
    return labels.reshape(n, -1), targets.reshape(n, -1), mask.reshape(n)
