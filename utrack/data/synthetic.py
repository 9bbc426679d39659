"""Synthetic MOT sequences: the built-in training and validation data (no external files).

Each sequence is a street scene seen from above the ground plane: a textured background (façade
with windows above the horizon, tiled ground with perspective below), one or two static
occluders (advertising columns), and person-like sprites (head, torso, arms, legs) whose size
follows their depth (the foot's image row). Every identity has its own clothing colours, torso
texture (stripes, checks, blobs, dots, ...), build and accessories, so appearance identifies it.

People are born at the borders (walking in) or appear inside the scene, walk with velocity noise
and occasional turns or stops, and die when they leave the image. Every sequence also contains
scripted events that make motion alone ambiguous:

- *meetings*: two people at about the same depth walk towards each other, stand together
  (their boxes overlap with intersection / min(area) > 0.7) and then either walk on or turn
  back, so a constant-velocity prediction swaps them half of the time;
- *hidden passages*: a person walks behind an occluder, is fully hidden for several frames, and
  comes out later than predicted, slower, faster or walking back the way they came.

Objects are drawn in depth order; visibility is the fraction of a person's silhouette pixels
that are drawn last at their place and inside the image. The files follow the MOTChallenge
layout: ``img1/000001.jpg``, ``gt/gt.txt`` (``frame,id,x,y,w,h,1,1,visibility``; every person
whose box touches the image, including hidden ones), ``det/det.txt`` (noisy public detections:
jittered boxes of visible people with misses, and a few false positives), ``seqinfo.ini``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from utrack.config import SyntheticConfig

#: bump when the generated content changes, so stamped generations are redone
GENERATOR_VERSION = 2
STAMP_NAME = "synthetic_stamp.json"

_TEMPLATE_H = 120  # canonical sprite height in pixels
_PHASES = 8  # walking poses per stride cycle
_TEXTURES = ("stripes_h", "stripes_v", "stripes_d", "checks", "blobs", "dots", "bands")


# ----------------------------------------------------------------------------------------------
# Scene geometry


@dataclass(frozen=True)
class _Ground:
    """Ground plane: a person's height in pixels grows linearly with the foot row below the
    horizon."""

    width: int
    height: int

    @property
    def horizon(self) -> float:
        return 0.2 * self.height

    @property
    def y_min(self) -> float:
        return 0.42 * self.height

    @property
    def y_max(self) -> float:
        return 0.97 * self.height

    def person_height(self, y_foot: float | np.ndarray) -> float | np.ndarray:
        return 0.48 * self.height * (y_foot - self.horizon) / (self.height - self.horizon)


# ----------------------------------------------------------------------------------------------
# Appearance


def _colour(rng: np.random.Generator, hue: float, sat: tuple[float, float] = (0.45, 1.0),
            val: tuple[float, float] = (0.35, 0.95)) -> np.ndarray:
    """A BGR uint8 colour of the given hue (0..180, OpenCV's scale)."""
    hsv = np.array([[[hue % 180, rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.uint8)


def _texture(rng: np.random.Generator, kind: str, c1: np.ndarray, c2: np.ndarray,
             height: int, width: int) -> np.ndarray:
    """(height, width, 3) uint8 two-colour pattern."""
    y, x = np.mgrid[0:height, 0:width]
    period = int(rng.integers(5, 11))
    if kind == "stripes_h":
        sel = (y // period) % 2 == 0
    elif kind == "stripes_v":
        sel = (x // period) % 2 == 0
    elif kind == "stripes_d":
        sel = ((x + y) // period) % 2 == 0
    elif kind == "checks":
        sel = ((x // period) + (y // period)) % 2 == 0
    elif kind == "blobs":
        low = rng.random((max(2, height // 12), max(2, width // 12))).astype(np.float32)
        sel = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC) > 0.5
    elif kind == "dots":
        sel = ((x % period - period / 2) ** 2 + (y % period - period / 2) ** 2) > (period / 3) ** 2
    else:  # bands: one wide band across the chest
        top = rng.uniform(0.3, 0.5)
        sel = ~((y > top * height) & (y < (top + 0.25) * height))
    out = np.where(sel[..., None], c1, c2).astype(np.uint8)
    return out


@dataclass
class _Identity:
    """One person's look: walking poses facing right, as (image BGR, mask bool) templates of
    height ``_TEMPLATE_H`` (index 0 = standing), and mirrored ones facing left."""

    build: float
    right: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    left: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


def _make_identity(rng: np.random.Generator, hue: float) -> _Identity:
    build = float(rng.uniform(0.36, 0.46))
    th, tw = _TEMPLATE_H, int(round(_TEMPLATE_H * build))
    shirt1 = _colour(rng, hue)
    shirt2 = _colour(rng, hue + rng.uniform(40, 140))
    trousers = _colour(rng, rng.uniform(0, 180), sat=(0.1, 0.8), val=(0.15, 0.7))
    skin = _colour(rng, rng.uniform(5, 20), sat=(0.3, 0.6), val=(0.45, 0.95))
    hair = _colour(rng, rng.uniform(0, 30), sat=(0.2, 0.8), val=(0.05, 0.5))
    shoes = _colour(rng, rng.uniform(0, 180), sat=(0.0, 0.5), val=(0.05, 0.4))
    texture = _texture(rng, _TEXTURES[int(rng.integers(len(_TEXTURES)))], shirt1, shirt2, th, tw)
    hat = _colour(rng, rng.uniform(0, 180)) if rng.random() < 0.3 else None
    bag = _colour(rng, rng.uniform(0, 180)) if rng.random() < 0.4 else None
    ident = _Identity(build)
    cx = tw / 2
    for phase in range(_PHASES):
        swing = math.sin(2 * math.pi * phase / _PHASES)
        img = np.zeros((th, tw, 3), np.uint8)
        mask = np.zeros((th, tw), np.uint8)

        def draw(fn: Callable[..., Any], colour: Sequence[int], *args: Any, **kwargs: Any) -> None:
            fn(img, *args, color=tuple(int(c) for c in colour), **kwargs)
            fn(mask, *args, color=255, **kwargs)

        leg_w = max(2, int(0.2 * tw))
        hip_y, foot_y = int(0.52 * th), int(0.95 * th)
        for side, sign in ((-1, 1.0), (1, -1.0)):  # back leg first
            hip = (int(cx + side * 0.16 * tw), hip_y)
            foot = (int(cx + side * 0.12 * tw + sign * swing * 0.3 * tw), foot_y)
            draw(cv2.line, trousers, hip, foot, thickness=leg_w)
            draw(cv2.ellipse, shoes, (foot[0] + 2, foot[1] + 1), (max(2, leg_w // 2 + 2), 3),
                 0, 0, 360, thickness=-1)
        # torso: textured polygon
        torso = np.array([[cx - 0.42 * tw, 0.17 * th], [cx + 0.42 * tw, 0.17 * th],
                          [cx + 0.33 * tw, 0.55 * th], [cx - 0.33 * tw, 0.55 * th]], np.int32)
        torso_mask = np.zeros((th, tw), np.uint8)
        cv2.fillPoly(torso_mask, [torso], 255)
        img[torso_mask > 0] = texture[torso_mask > 0]
        mask |= torso_mask
        arm_w = max(2, int(0.14 * tw))
        for side, sign in ((-1, -1.0), (1, 1.0)):
            shoulder = (int(cx + side * 0.38 * tw), int(0.2 * th))
            hand = (int(cx + side * 0.42 * tw + sign * swing * 0.25 * tw), int(0.5 * th))
            draw(cv2.line, (shirt1.astype(np.int32) * 3 // 4), shoulder, hand, thickness=arm_w)
            draw(cv2.circle, skin, hand, max(1, arm_w // 2 + 1), thickness=-1)
        if bag is not None:
            draw(cv2.rectangle, bag, (int(cx + 0.15 * tw), int(0.4 * th)),
                 (int(cx + 0.5 * tw), int(0.58 * th)), thickness=-1)
        head = (int(cx), int(0.09 * th))
        axes = (max(2, int(0.2 * tw)), max(3, int(0.075 * th)))
        draw(cv2.ellipse, hair, (head[0], head[1] - 2), axes, 0, 0, 360, thickness=-1)
        draw(cv2.ellipse, skin, (head[0] + 1, head[1] + 2), (axes[0] - 1, axes[1] - 2), 0, 0, 360,
             thickness=-1)
        if hat is not None:
            draw(cv2.rectangle, hat, (head[0] - axes[0], 0), (head[0] + axes[0], int(0.045 * th)),
                 thickness=-1)
        ident.right.append((img, mask > 0))
        ident.left.append((img[:, ::-1].copy(), mask[:, ::-1] > 0))
    return ident


def _background(rng: np.random.Generator, ground: _Ground) -> np.ndarray:
    """(H, W, 3) uint8 street background: façade with windows, tiled ground, smooth noise."""
    width, height = ground.width, ground.height
    horizon = int(ground.horizon)
    bg = np.zeros((height, width, 3), np.float32)
    bg[:horizon] = _colour(rng, rng.uniform(0, 180), sat=(0.1, 0.4), val=(0.5, 0.8))
    bg[horizon:] = _colour(rng, rng.uniform(0, 180), sat=(0.05, 0.3), val=(0.35, 0.65))
    # windows on the façade
    cols = int(rng.integers(6, 12))
    for i in range(cols):
        x0 = int((i + 0.2) * width / cols)
        for y0 in range(4, horizon - 10, 22):
            c = _colour(rng, rng.uniform(90, 130), sat=(0.1, 0.5), val=(0.2, 0.9))
            cv2.rectangle(bg, (x0, y0), (x0 + int(0.5 * width / cols), y0 + 14),
                          tuple(float(v) for v in c), -1)
    # ground tiles with perspective: rows closer together near the horizon
    vanish_x = width * rng.uniform(0.3, 0.7)
    line = tuple(float(v) * 0.8 for v in bg[-1, 0])
    for k in range(1, 14):
        y = int(horizon + (height - horizon) * (k / 13) ** 1.8)
        cv2.line(bg, (0, y), (width, y), line, 1)
    for k in range(-12, 13):
        cv2.line(bg, (int(vanish_x), horizon), (int(vanish_x + k * width / 6), height), line, 1)
    # flat decals (posters, puddles): clutter, not occluders
    for _ in range(int(rng.integers(4, 9))):
        c = tuple(float(v) for v in _colour(rng, rng.uniform(0, 180)))
        centre = (int(rng.uniform(0, width)), int(rng.uniform(horizon, height)))
        axes = (int(rng.uniform(8, 40)), int(rng.uniform(3, 12)))
        cv2.ellipse(bg, centre, axes, 0, 0, 360, c, -1)
    low = rng.normal(0, 14, (6, 10, 3)).astype(np.float32)
    bg += cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    bg = cv2.GaussianBlur(bg, (3, 3), 0)
    return np.clip(bg, 0, 255).astype(np.uint8)


@dataclass
class _Occluder:
    """A static column standing at foot row ``base`` (covers whoever walks just behind it)."""

    x0: int
    y0: int
    image: np.ndarray
    base: float

    @property
    def mask(self) -> np.ndarray:
        return np.ones(self.image.shape[:2], bool)


def _make_occluder(rng: np.random.Generator, ground: _Ground, x_centre: float,
                   base: float) -> _Occluder:
    person_h = ground.person_height(base)
    w = int(round(1.5 * 0.42 * person_h))  # hides a walker for about a second
    h = int(round(1.35 * person_h))
    # stone-grey masonry (low saturation, unlike any clothing) with one poster, so the column
    # itself does not look like a person
    grey = (0.0, 0.12)
    c1 = _colour(rng, rng.uniform(0, 180), sat=grey, val=(0.55, 0.75))
    c2 = _colour(rng, rng.uniform(0, 180), sat=grey, val=(0.35, 0.5))
    y, x = np.mgrid[0:h, 0:w]
    course = max(4, h // 14)
    joints = (y % course == 0) | (((x + (y // course % 2) * (w // 4)) % max(4, w // 2)) == 0)
    image = np.where(joints[..., None], c2, c1).astype(np.uint8)
    poster = _colour(rng, rng.uniform(0, 180))
    cv2.rectangle(image, (w // 6, h // 5), (w - w // 6, h // 2), tuple(int(v) for v in poster), -1)
    return _Occluder(int(round(x_centre - w / 2)), int(round(base - h)), image, base)


# ----------------------------------------------------------------------------------------------
# Motion


@dataclass
class _Track:
    """A person's path: positions (n, 2) ``x_centre, y_foot`` for frames ``start .. start+n-1``."""

    identity: _Identity
    start: int
    pos: np.ndarray
    walked: np.ndarray = field(init=False)  # (n,) distance walked so far, in pixels
    facing_right: np.ndarray = field(init=False)  # (n,) bool, kept while standing

    def __post_init__(self) -> None:
        step = np.diff(self.pos, axis=0)
        self.walked = np.concatenate([[0.0], np.cumsum(np.hypot(step[:, 0], step[:, 1]))])
        dx = np.concatenate([step[:1, 0] if len(step) else [1.0], step[:, 0]])
        facing = np.empty(len(dx), bool)
        last = True
        for k, d in enumerate(dx):
            if abs(d) > 1e-6:
                last = d > 0
            facing[k] = last
        self.facing_right = facing


def _outside(ground: _Ground, x: float, y: float, build: float) -> bool:
    w = build * ground.person_height(y)
    return x + w / 2 < 0 or x - w / 2 > ground.width


def _free_walk(rng: np.random.Generator, ground: _Ground, fps: float, last_frame: int, t: int,
               x: float, y: float, angle: float, speed: float, build: float,
               calm: bool = False) -> list[tuple[float, float]]:
    """Positions from frame ``t + 1`` until the person leaves the image or ``last_frame``.

    ``angle`` is the walking direction (radians, 0 = right), ``speed`` in person heights per
    second. Velocity noise, occasional turns and stops; ``calm`` disables turns and stops.
    """
    out: list[tuple[float, float]] = []
    rate = 10.0 / fps  # event probabilities are per 1/10 s
    stop = 0
    while t < last_frame:
        t += 1
        angle += rng.normal(0, 0.04)
        speed = float(np.clip(speed * math.exp(rng.normal(0, 0.03)), 0.15, 0.8))
        if not calm and rng.random() < 0.006 * rate:
            angle += rng.uniform(math.pi / 2, 3 * math.pi / 2)  # turn
        if not calm and stop == 0 and rng.random() < 0.004 * rate:
            stop = int(rng.integers(5, 20))
        if stop:
            stop -= 1
        else:
            step = speed / fps * ground.person_height(y)
            x += step * math.cos(angle)
            y += step * math.sin(angle) * 0.5  # depth changes slower than sideways motion
            if y < ground.y_min or y > ground.y_max:
                y = float(np.clip(y, ground.y_min, ground.y_max))
                angle = -angle
        out.append((x, y))
        if _outside(ground, x, y, build):
            break
    return out


def _straight(x0: float, x1: float, y: float, frames: int) -> list[tuple[float, float]]:
    """``frames`` positions from x0 (exclusive) to x1 (inclusive) at constant y."""
    return [(x0 + (x1 - x0) * (k + 1) / frames, y) for k in range(frames)]


def _approach(ground: _Ground, fps: float, x_goal: float, y: float, t_goal: int, direction: int,
              speed: float, build: float) -> tuple[int, list[tuple[float, float]]]:
    """Walk horizontally (``direction`` +1 right, -1 left) to ``x_goal`` at frame ``t_goal``,
    starting at the border, or at frame 1 already inside when there is no time for that."""
    step = speed / fps * ground.person_height(y)
    w = build * ground.person_height(y)
    x_border = -w / 2 + 1 if direction > 0 else ground.width + w / 2 - 1
    frames_needed = max(1, int(math.ceil(abs(x_goal - x_border) / step)))
    start = max(1, t_goal - frames_needed)
    x_start = x_goal - direction * step * (t_goal - start)
    return start, [(x_start, y)] + _straight(x_start, x_goal, y, t_goal - start)


# ----------------------------------------------------------------------------------------------
# One sequence


def _plan(rng: np.random.Generator, ground: _Ground, frames: int, fps: float, max_people: int,
          occluders: list[_Occluder], new_identity: Callable[[], _Identity]) -> list[_Track]:
    """Scripted meetings and hidden passages, then random walkers up to ``max_people``."""
    tracks: list[_Track] = []
    width = ground.width

    def walk_on(ident: _Identity, start: int, path: list[tuple[float, float]], angle: float,
                speed: float, calm: bool = False) -> None:
        x, y = path[-1]
        path = path + _free_walk(rng, ground, fps, frames, start + len(path) - 1, x, y, angle,
                                 speed, ident.build, calm)
        tracks.append(_Track(ident, start, np.asarray(path, np.float64)))

    meetings = max(2, frames // 75)
    for _ in range(meetings):
        t_meet = int(rng.uniform(0.3, 0.7) * frames)
        y = rng.uniform(ground.y_min + 0.15 * (ground.y_max - ground.y_min), ground.y_max - 5)
        x = rng.uniform(0.3, 0.7) * width
        pause = int(rng.integers(3, 9))
        turn_back = bool(rng.random() < 0.5)
        for direction in (1, -1):
            ident = new_identity()
            speed = rng.uniform(0.3, 0.5)
            y_i = y + (rng.uniform(0, 0.04) * ground.person_height(y) if direction < 0 else 0.0)
            gap = rng.uniform(0.0, 0.12) * ident.build * ground.person_height(y_i)
            start, path = _approach(ground, fps, x - direction * gap / 2, y_i, t_meet, direction,
                                    speed, ident.build)
            path += [path[-1]] * pause
            angle = 0.0 if direction > 0 else math.pi
            if turn_back:
                angle += math.pi
            walk_on(ident, start, path, angle, speed, calm=True)

    for occ in occluders:
        t_hidden = int(rng.uniform(0.3, 0.6) * frames)
        direction = 1 if rng.random() < 0.5 else -1
        ident = new_identity()
        y = occ.base - rng.uniform(0.02, 0.06) * ground.height
        speed = rng.uniform(0.3, 0.5)
        x_centre = occ.x0 + occ.image.shape[1] / 2
        start, path = _approach(ground, fps, x_centre, y, t_hidden, direction, speed, ident.build)
        path += [path[-1]] * int(rng.integers(0, 4))
        outcome = rng.random()
        angle = 0.0 if direction > 0 else math.pi
        if outcome < 0.35:
            angle += math.pi  # walks back the way they came
        elif outcome < 0.7:
            speed *= rng.choice([0.5, 1.6])
        walk_on(ident, start, path, angle, speed, calm=True)

    # random walkers, born while fewer than max_people are present
    present = np.zeros(frames + 2, np.int64)
    for tr in tracks:
        present[tr.start:tr.start + len(tr.pos)] += 1
    rate = 10.0 / fps
    initial = max(0, max_people // 2 - int(present[1]))
    for t in range(1, frames + 1):
        births = initial if t == 1 else int(rng.random() < 0.05 * rate)
        for _ in range(births):
            if present[t] >= max_people:
                break
            ident = new_identity()
            y = rng.uniform(ground.y_min, ground.y_max)
            speed = rng.uniform(0.25, 0.55)
            w = ident.build * ground.person_height(y)
            if t > 1 and rng.random() < 0.75:  # enter from a border
                direction = 1 if rng.random() < 0.5 else -1
                x = -w / 2 + 1 if direction > 0 else width + w / 2 - 1
            else:  # appear (frame 1, or out of a door)
                direction = 1 if rng.random() < 0.5 else -1
                x = rng.uniform(0.1, 0.9) * width
            angle = (0.0 if direction > 0 else math.pi) + rng.uniform(-0.4, 0.4)
            walk_on(ident, t, [(x, y)], angle, speed)
            tr = tracks[-1]
            present[t:t + len(tr.pos)] += 1
    return tracks


def _render_box(ground: _Ground, build: float, x: float, y: float) -> tuple[int, int, int, int]:
    h = ground.person_height(y)
    w = build * h
    return int(round(x - w / 2)), int(round(y - h)), max(2, int(round(w))), max(4, int(round(h)))


def _paste(frame: np.ndarray, label: np.ndarray, image: np.ndarray, mask: np.ndarray,
           x0: int, y0: int, value: int) -> None:
    """Draw ``image`` where ``mask`` at top-left ``(x0, y0)``, clipped to the frame; mark the
    drawn pixels with ``value`` in ``label``."""
    h, w = mask.shape
    height, width = label.shape
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
    if xa >= xb or ya >= yb:
        return
    m = mask[ya - y0:yb - y0, xa - x0:xb - x0]
    frame[ya:yb, xa:xb][m] = image[ya - y0:yb - y0, xa - x0:xb - x0][m]
    label[ya:yb, xa:xb][m] = value


def generate_sequence(out_dir: str | Path, *, seed: int | Sequence[int], frames: int = 150,
                      width: int = 480, height: int = 288, fps: float = 10, max_people: int = 9,
                      name: str | None = None, jpeg_quality: int = 92) -> Path:
    """Write one synthetic sequence in MOTChallenge layout to ``out_dir`` (see module doc).

    The content is a function of the arguments only (same seed, same gt/det bytes). Existing
    ``img1/*.jpg`` files in ``out_dir`` are replaced. Returns ``out_dir``.
    """
    if frames < 1 or width < 64 or height < 64 or max_people < 1 or fps <= 0:
        raise ValueError(f"generate_sequence: need frames >= 1, size >= 64x64, max_people >= 1, "
                         f"fps > 0 (got {frames}, {width}x{height}, {max_people}, {fps})")
    out_dir = Path(out_dir)
    name = name or out_dir.name
    rng = np.random.default_rng(seed)
    ground = _Ground(width, height)
    background = _background(rng, ground)

    occluders = []
    count = 1 if width < 640 else 2
    for i in range(count):
        x = (i + rng.uniform(0.3, 0.7)) * width / count
        base = rng.uniform(0.55, 0.72) * height
        occluders.append(_make_occluder(rng, ground, x, base))

    hue_step = 180.0 / 11  # successive identities get well separated torso hues
    hue0 = rng.uniform(0, 180)
    identities: list[_Identity] = []

    def new_identity() -> _Identity:
        ident = _make_identity(rng, hue0 + hue_step * 7 * len(identities) + rng.uniform(-3, 3))
        identities.append(ident)
        return ident

    tracks = _plan(rng, ground, frames, fps, max_people, occluders, new_identity)
    tracks.sort(key=lambda tr: tr.start)  # stable: ids by first frame, then by creation
    noise = [rng.normal(0, 3.0, (height, width, 3)).astype(np.int16) for _ in range(6)]

    img_dir = out_dir / "img1"
    img_dir.mkdir(parents=True, exist_ok=True)
    for old in img_dir.glob("*.jpg"):
        old.unlink()
    gt_lines: list[tuple[int, int, int, int, int, int, float]] = []
    for t in range(1, frames + 1):
        frame = background.copy()
        label = np.full((height, width), -1, np.int32)
        items = []  # (depth, order, kind, payload)
        for tid, tr in enumerate(tracks):
            k = t - tr.start
            if 0 <= k < len(tr.pos):
                items.append((tr.pos[k][1], tid, "person", k))
        for j, occ in enumerate(occluders):
            items.append((occ.base, len(tracks) + j, "occluder", j))
        items.sort(key=lambda it: (it[0], it[1]))
        totals: dict[int, tuple[int, tuple[int, int, int, int]]] = {}
        for _, tid, kind, k in items:
            if kind == "occluder":
                occ = occluders[k]
                _paste(frame, label, occ.image, occ.mask, occ.x0, occ.y0, -2)
                continue
            tr = tracks[tid]
            x, y = tr.pos[k]
            box = _render_box(ground, tr.identity.build, x, y)
            if box[0] >= width or box[1] >= height or box[0] + box[2] <= 0 or box[1] + box[3] <= 0:
                continue
            standing = k > 0 and tr.walked[k] - tr.walked[k - 1] < 1e-6
            pose = 0 if standing else int(tr.walked[k] / (0.6 * box[3]) * _PHASES) % _PHASES
            poses = tr.identity.right if tr.facing_right[k] else tr.identity.left
            img, mask = poses[pose]
            img = cv2.resize(img, box[2:], interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask.astype(np.uint8), box[2:], interpolation=cv2.INTER_NEAREST) > 0
            _paste(frame, label, img, mask, box[0], box[1], tid)
            totals[tid] = (int(mask.sum()), box)
        visible = np.bincount(label[label >= 0].ravel(), minlength=len(tracks))
        for tid, (total, box) in totals.items():
            gt_lines.append((t, tid + 1, *box, float(visible[tid]) / max(total, 1)))
        frame = np.clip(frame.astype(np.int16) + noise[int(rng.integers(len(noise)))], 0, 255)
        cv2.imwrite(str(img_dir / f"{t:06d}.jpg"), frame.astype(np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])

    # ids: 1.. in order of first appearance in the image (tracks that never show are skipped)
    first: dict[int, int] = {}
    for line in gt_lines:  # gt_lines are in frame order
        first.setdefault(line[1], len(first) + 1)
    renumber = first
    gt_lines = sorted(((f, renumber[i], *rest) for f, i, *rest in gt_lines), key=lambda l: (l[0], l[1]))
    (out_dir / "gt").mkdir(exist_ok=True)
    (out_dir / "gt" / "gt.txt").write_text("".join(
        f"{f},{i},{x},{y},{w},{h},1,1,{v:.4f}\n" for f, i, x, y, w, h, v in gt_lines))
    _write_detections(rng, ground, out_dir / "det" / "det.txt", gt_lines, frames)
    (out_dir / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nimDir=img1\nframeRate={fps:g}\nseqLength={frames}\n"
        f"imWidth={width}\nimHeight={height}\nimExt=.jpg\n")
    return out_dir


def _write_detections(rng: np.random.Generator, ground: _Ground, path: Path,
                      gt_lines: list, frames: int) -> None:
    """Public detections: gt boxes detected with a probability that grows with visibility,
    jittered, scored; plus about one false positive every ten frames."""
    rows = []
    for f, _, x, y, w, h, vis in gt_lines:
        if rng.random() >= 0.97 * min(1.0, max(0.0, (vis - 0.15) / 0.45)):
            continue
        jx, jy, jw, jh, js = rng.normal(0, 1, 5)
        bw, bh = w * math.exp(0.06 * jw), h * math.exp(0.05 * jh)
        bx = x + 0.05 * w * jx + (w - bw) / 2
        by = y + 0.03 * h * jy + (h - bh) / 2
        rows.append((f, bx, by, bw, bh, float(np.clip(0.35 + 0.6 * vis + 0.08 * js, 0.01, 1.0))))
    for f in range(1, frames + 1):
        for _ in range(int(rng.poisson(0.1))):
            y_foot = rng.uniform(ground.y_min, ground.y_max)
            h = ground.person_height(y_foot) * rng.uniform(0.7, 1.2)
            w = 0.42 * h * rng.uniform(0.7, 1.3)
            x = rng.uniform(0, ground.width - w)
            rows.append((f, x, y_foot - h, w, h, float(rng.uniform(0.05, 0.6))))
    rows.sort(key=lambda r: r[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{f},-1,{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.4f},-1,-1,-1\n"
                            for f, x, y, w, h, s in rows))


# ----------------------------------------------------------------------------------------------
# A dataset of sequences


def _stamp(cfg: SyntheticConfig) -> dict:
    params = dataclasses.asdict(cfg)
    params.pop("root", None)
    return {"generator_version": GENERATOR_VERSION, "params": params}


def _remove_stale_sequences(root: Path, keep: set[Path]) -> None:
    """Delete generated sequences (``train/SYN-*``, ``val/SYN-*``) not in ``keep``: a generation
    with other counts would otherwise leave old sequences that the validation root still lists."""
    for split in ("train", "val"):
        for d in sorted((root / split).glob("SYN-*")):
            if d.is_dir() and d not in keep and (d / "seqinfo.ini").is_file():
                shutil.rmtree(d)


def sequence_name(index: int) -> str:
    """Name of the recipe's sequence ``index`` (0-based): ``SYN-01``, ``SYN-02``, ..."""
    return f"SYN-{index + 1:02d}"


def generate_recipe_sequence(parent: str | Path, cfg: SyntheticConfig, index: int) -> Path:
    """Sequence ``index`` of the recipe ``cfg`` (seed ``(cfg.seed, index)``), written to
    ``parent / sequence_name(index)`` exactly as ``generate_dataset`` writes it."""
    return generate_sequence(Path(parent) / sequence_name(index), seed=(cfg.seed, index),
                             frames=cfg.frames, width=cfg.width, height=cfg.height, fps=cfg.fps,
                             max_people=cfg.max_people, name=sequence_name(index))


def generate_dataset(root: str | Path, cfg: SyntheticConfig) -> tuple[list[Path], list[Path]]:
    """Generate ``cfg.num_train`` sequences under ``root/train`` and ``cfg.num_val`` under
    ``root/val`` (named ``SYN-01`` ...), sequence i seeded with ``(cfg.seed, i)``.

    A stamp file in ``root`` records the parameters; when it matches and every sequence is
    complete, the existing generation is reused. Returns (train dirs, val dirs).
    """
    root = Path(root)
    names = [sequence_name(i) for i in range(cfg.num_train + cfg.num_val)]
    dirs = [root / ("train" if i < cfg.num_train else "val") / n for i, n in enumerate(names)]
    stamp_path = root / STAMP_NAME
    stamp = _stamp(cfg)

    def complete(d: Path) -> bool:
        return ((d / "seqinfo.ini").is_file() and (d / "gt" / "gt.txt").is_file()
                and (d / "img1" / f"{cfg.frames:06d}.jpg").is_file())

    if stamp_path.is_file():
        try:
            old = json.loads(stamp_path.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        if old == stamp and all(complete(d) for d in dirs):
            return dirs[:cfg.num_train], dirs[cfg.num_train:]
        stamp_path.unlink()  # written again only once the new generation is complete
    _remove_stale_sequences(root, set(dirs))
    for i, d in enumerate(dirs):
        generate_recipe_sequence(d.parent, cfg, i)
    stamp_path.write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n")
    return dirs[:cfg.num_train], dirs[cfg.num_train:]
