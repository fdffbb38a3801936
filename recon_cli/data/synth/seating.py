"""Chairs, benches and sofas (seat front towards +z, backrest at -z, width along x)."""

from __future__ import annotations

import numpy as np
from manifold3d import Manifold

from recon_cli.data.synth.materials import pick, shade
from recon_cli.data.synth.parts import (
    uniform as _u,
    Assembly, box, cyl, extrude_side, hull, pillow, rbox, rot_x, sphere, union, ycyl,
)

Colour = tuple[int, int, int]


def _leg(top: np.ndarray, bottom: np.ndarray, t: float, *,
         round_leg: bool, taper: float = 1.0) -> Manifold:
    """A leg from ``top`` to ``bottom`` (square or round, optionally tapered)."""
    if round_leg:
        return cyl(bottom, top, t / 2 * taper, t / 2, seg=12)
    return _square_leg(top, bottom, t, taper)


def _square_leg(top: np.ndarray, bottom: np.ndarray, t: float, taper: float) -> Manifold:
    """Square-section leg, possibly tapered and splayed: hull of two thin slabs."""
    tb = t * taper
    return hull(box(top - [0, 0.001, 0], (t, 0.002, t)), box(bottom + [0, 0.001, 0], (tb, 0.002, tb)))


def _back_panel(a: Assembly, rng: np.random.Generator, *, w: float, z: float, y0: float, h: float,
                t: float, recline: float, style: str, frame: Colour, fill: Colour,
                post_t: float, round_leg: bool) -> None:
    """Backrest above the seat's rear edge (z), rotated backwards by ``recline`` degrees."""
    pivot = (0.0, y0, z)
    parts_frame: list[Manifold] = []
    parts_fill: list[Manifold] = []
    if style == "solid":
        r = _u(rng, 0.0, 0.08)
        parts_fill.append(rbox((0, y0 + h / 2, z), (w, h, t), r, axis="z"))
    elif style == "upholstered":
        parts_fill.append(pillow((0, y0 + h / 2, z), (w, h, max(t, 0.06)), 0.025))
    else:
        for sx in (-1, 1):
            parts_frame.append(box((sx * (w / 2 - post_t / 2), y0 + h / 2, z), (post_t, h, post_t)))
        top_h = _u(rng, 0.04, 0.12)
        parts_frame.append(box((0, y0 + h - top_h / 2, z), (w, top_h, t)))
        inner = w - 2 * post_t
        if style == "vslats":
            n = int(rng.integers(2, 7))
            sw = inner / (2 * n + 1) * _u(rng, 0.7, 1.3)
            for i in range(n):
                x = -inner / 2 + inner * (i + 0.5) / n
                parts_frame.append(box((x, y0 + (h - top_h) / 2, z), (sw, h - top_h + 0.01, t * 0.7)))
        elif style == "hslats":
            n = int(rng.integers(2, 5))
            for i in range(n):
                y = y0 + (h - top_h) * (i + 0.6) / (n + 0.3)
                parts_frame.append(box((0, y, z), (inner + 0.01, _u(rng, 0.03, 0.07), t * 0.7)))
        elif style == "spindle":
            n = int(rng.integers(4, 9))
            for i in range(n):
                x = -inner / 2 + inner * (i + 0.5) / n
                parts_frame.append(cyl((x, y0, z), (x, y0 + h - top_h / 2, z), 0.008, seg=8))
        elif style == "pad":
            ph = h * _u(rng, 0.35, 0.6)
            parts_fill.append(pillow((0, y0 + h - top_h - ph / 2, z), (inner + 0.01, ph, t * 1.4), 0.015))
    for p in parts_frame:
        a.add(rot_x(p, -recline, pivot), frame)
    for p in parts_fill:
        a.add(rot_x(p, -recline, pivot), fill)


def _arms(a: Assembly, rng: np.random.Generator, *, w: float, d: float, seat_y: float, z_back: float,
          colour: Colour, t: float) -> None:
    arm_h = _u(rng, 0.18, 0.26)
    length = d * _u(rng, 0.75, 1.0)
    for sx in (-1, 1):
        x = sx * (w / 2 + t * 0.3)
        z0 = z_back + 0.02
        a.add(box((x, seat_y + arm_h, z0 + length / 2), (t * 1.6, 0.03, length)), colour)
        a.add(box((x, seat_y + arm_h / 2 - 0.03, z0 + length * 0.85), (t, arm_h + 0.06, t)), colour)


#: Families of chairs as drawn (repeats weight the common kinds); the first draw of the generator.
CHAIR_DRAW: tuple[str, ...] = ("four_leg", "four_leg", "office", "cantilever", "stool", "lounge", "tulip")


def chair(rng: np.random.Generator) -> Assembly:
    """Chairs: four legs, office star base, cantilever/sled, stool, lounge armchair."""
    family = str(rng.choice(CHAIR_DRAW))
    return {"four_leg": _chair_four_leg, "office": _chair_office, "cantilever": _chair_cantilever,
            "stool": _chair_stool, "lounge": _chair_lounge, "tulip": _chair_tulip}[family](rng)


def _chair_materials(rng: np.random.Generator) -> tuple[Colour, Colour]:
    if rng.random() < 0.55:
        frame = pick(rng, "wood")
        fill = frame if rng.random() < 0.5 else pick(rng, "fabric")
    else:
        frame = pick(rng, str(rng.choice(["metal", "dark_metal", "plastic_dark"])))
        fill = pick(rng, str(rng.choice(["fabric", "leather", "plastic_colour", "wood"])))
    return frame, fill


def _chair_four_leg(rng: np.random.Generator) -> Assembly:
    a = Assembly()
    frame, fill = _chair_materials(rng)
    w, d, sh = _u(rng, 0.40, 0.56), _u(rng, 0.38, 0.52), _u(rng, 0.40, 0.50)
    st = _u(rng, 0.02, 0.07)
    lt = _u(rng, 0.025, 0.05)
    round_leg = bool(rng.random() < 0.4)
    splay = _u(rng, 0.0, 0.05) if rng.random() < 0.4 else 0.0
    taper = _u(rng, 0.6, 1.0)
    seat_pad = rng.random() < 0.4
    a.add(rbox((0, sh - st / 2, 0), (w, st, d), _u(rng, 0.0, 0.05)), fill if seat_pad else frame)
    if seat_pad:
        a.add(pillow((0, sh + 0.02, 0.005), (w - 0.02, 0.05, d - 0.02), 0.02), fill)
    inset = lt / 2 + _u(rng, 0.0, 0.03)
    for sx in (-1, 1):
        for sz in (-1, 1):
            top = np.array([sx * (w / 2 - inset), sh - st + 0.005, sz * (d / 2 - inset)])
            bot = top * [1, 0, 1] + [sx * splay, 0, sz * splay]
            a.add(_leg(top, bot, lt, round_leg=round_leg, taper=taper), frame)
    if rng.random() < 0.5:  # stretchers
        y = sh * _u(rng, 0.2, 0.4)
        out = splay * (1 - y / (sh - st))  # splayed legs are further out at this height
        for sx in (-1, 1):
            a.add(box((sx * (w / 2 - inset + out), y, 0), (lt * 0.6, lt * 0.6, d - 2 * inset + 2 * out)), frame)
        if rng.random() < 0.5:
            a.add(box((0, y, 0), (w - 2 * inset + 2 * out, lt * 0.6, lt * 0.6)), frame)
    if rng.random() < 0.5:  # apron
        ah = _u(rng, 0.04, 0.09)
        a.add(box((0, sh - st - ah / 2 + 0.002, 0), (w - 2 * inset, ah, d - 2 * inset)), frame)
    style = str(rng.choice(["solid", "vslats", "hslats", "spindle", "pad", "upholstered", "open"]))
    bh = _u(rng, 0.32, 0.58)
    bt = _u(rng, 0.02, 0.05)
    _back_panel(a, rng, w=w, z=-d / 2 + bt / 2, y0=sh - 0.01, h=bh, t=bt, recline=_u(rng, 0, 16),
                style="hslats" if style == "open" else style, frame=frame,
                fill=fill if style in ("solid", "upholstered", "pad") else frame,
                post_t=max(lt * 0.9, 0.025), round_leg=round_leg)
    if rng.random() < 0.3:
        _arms(a, rng, w=w, d=d, seat_y=sh, z_back=-d / 2, colour=frame, t=lt)
    return a


def _star_base(a: Assembly, rng: np.random.Generator, radius: float, colour: Colour, y: float = 0.04) -> None:
    n = 5
    phase = _u(rng, 0.0, 72.0)  # the star is not aligned with the seat
    arm = box((0, 0, radius / 2), (0.04, 0.035, radius))
    for k in range(n):
        a.add(arm.rotate((0, 360.0 * k / n + phase, 0)).translate((0, y, 0)), colour)
    caster = pick(rng, "plastic_dark")
    for k in range(n):
        ang = np.radians(360.0 * k / n + phase)
        a.add(sphere((np.sin(ang) * radius * 0.95, 0.025, np.cos(ang) * radius * 0.95), 0.025, 10), caster)
    a.add(ycyl((0, y - 0.02, 0), 0.045, 0.05), colour)


def _chair_office(rng: np.random.Generator) -> Assembly:
    a = Assembly()
    base = pick(rng, str(rng.choice(["plastic_dark", "chrome"])))
    fill = pick(rng, str(rng.choice(["fabric", "leather", "plastic_dark"])))
    _star_base(a, rng, _u(rng, 0.28, 0.34), base)
    sh = _u(rng, 0.42, 0.52)
    w, d = _u(rng, 0.45, 0.55), _u(rng, 0.42, 0.52)
    a.add(ycyl((0, 0.06, 0), 0.025, sh - 0.12), pick(rng, "chrome"))
    a.add(box((0, sh - 0.09, 0), (0.18, 0.04, 0.2)), pick(rng, "dark_metal"))
    a.add(pillow((0, sh - 0.03, 0.01), (w, _u(rng, 0.06, 0.1), d), 0.03), fill)
    bh = _u(rng, 0.4, 0.75)
    recline = _u(rng, 5, 18)
    z = -d / 2 - 0.01
    pivot = (0, sh, z)
    bw = w * _u(rng, 0.85, 1.05)
    back = pillow((0, sh + 0.05 + bh / 2, z), (bw, bh, _u(rng, 0.05, 0.1)), 0.03)
    a.add(rot_x(back, -recline, pivot), fill)
    a.add(rot_x(box((0, sh + 0.02, z - 0.02), (0.06, 0.16, 0.03)), -recline, pivot), base)
    a.add(box((0, sh - 0.06, z / 2 - 0.02), (0.06, 0.03, -z)), base)
    if rng.random() < 0.35:  # headrest
        a.add(rot_x(pillow((0, sh + bh + 0.1, z), (bw * 0.55, 0.12, 0.07), 0.025), -recline, pivot), fill)
    if rng.random() < 0.65:
        ah = _u(rng, 0.18, 0.25)
        for sx in (-1, 1):
            x = sx * (w / 2 + 0.02)
            a.add(box((x, sh - 0.04 + ah / 2, -0.03), (0.03, ah, 0.04)), base)
            a.add(rbox((x, sh - 0.04 + ah, 0.0), (0.06, 0.03, _u(rng, 0.22, 0.3)), 0.02), base)
            a.add(box((x * 0.9, sh - 0.045, -0.03), (w * 0.12, 0.03, 0.04)), base)
    return a


def _tube_path(points: list[np.ndarray], r: float) -> Manifold:
    parts = [cyl(p, q, r, seg=10) for p, q in zip(points[:-1], points[1:])]
    parts += [sphere(p, r, 10) for p in points[1:-1]]
    return union(parts)


def _chair_cantilever(rng: np.random.Generator) -> Assembly:
    a = Assembly()
    metal = pick(rng, str(rng.choice(["chrome", "metal", "dark_metal"])))
    fill = pick(rng, str(rng.choice(["leather", "fabric", "wood", "plastic_colour"])))
    w, d, sh = _u(rng, 0.42, 0.52), _u(rng, 0.4, 0.5), _u(rng, 0.42, 0.48)
    r = _u(rng, 0.010, 0.016)
    bh = _u(rng, 0.35, 0.5)
    recline = np.radians(_u(rng, 4, 14))
    sled = rng.random() < 0.5
    for sx in (-1, 1):
        x = sx * (w / 2 - 0.01)
        top = np.array([x, sh + bh * np.cos(recline), -d / 2 - bh * np.sin(recline)])
        if sled:  # closed runner: front and rear legs on a floor runner
            pts = [np.array([x, r, d / 2 + 0.02]), np.array([x, r, -d / 2]), np.array([x, sh - 0.03, -d / 2 + 0.03]),
                   top]
            a.add(_tube_path([np.array([x, sh - 0.03, d / 2 - 0.03]), np.array([x, r, d / 2])], r), metal)
            a.add(_tube_path([np.array([x, sh - 0.03, -d / 2 + 0.03]), np.array([x, sh - 0.03, d / 2 - 0.03])], r),
                  metal)
        else:  # cantilever: runner, up at the front, seat rail back
            pts = [np.array([x, r, -d / 2 + 0.02]), np.array([x, r, d / 2]), np.array([x, sh - 0.04, d / 2 - 0.02]),
                   np.array([x, sh - 0.03, -d / 2 + 0.03]), top]
        a.add(_tube_path(pts, r), metal)
    if not sled:
        a.add(cyl((-w / 2, r, -d / 2 + 0.02), (w / 2, r, -d / 2 + 0.02), r, seg=10), metal)
    a.add(rbox((0, sh - 0.01, 0), (w, _u(rng, 0.02, 0.06), d), 0.03), fill)
    z = -d / 2 + 0.01
    back = rbox((0, sh + bh * 0.6, z), (w, bh * _u(rng, 0.45, 0.75), 0.025), 0.03, axis="z")
    a.add(rot_x(back, -np.degrees(recline), (0, sh, z)), fill)
    return a


def _chair_stool(rng: np.random.Generator) -> Assembly:
    a = Assembly()
    frame, fill = _chair_materials(rng)
    h = _u(rng, 0.42, 0.8)
    round_seat = rng.random() < 0.65
    sw = _u(rng, 0.3, 0.42)
    st = _u(rng, 0.03, 0.07)
    if round_seat:
        a.add(ycyl((0, h - st, 0), sw / 2, st, seg=24), fill)
    else:
        a.add(rbox((0, h - st / 2, 0), (sw, st, sw), 0.03), fill)
    n = int(rng.choice([3, 4, 4]))
    lt = _u(rng, 0.02, 0.04)
    spread = _u(rng, 0.0, 0.08)
    off = rng.uniform(0, 1) * np.pi
    tops = []
    for k in range(n):
        ang = off + 2 * np.pi * k / n
        dirv = np.array([np.sin(ang), 0, np.cos(ang)])
        top = dirv * sw * 0.36 + [0, h - st + 0.005, 0]
        bot = dirv * (sw * 0.36 + spread + 0.02 * h)
        tops.append((top, bot))
        a.add(cyl(bot, top, lt / 2, seg=10), frame)
    if rng.random() < 0.7:  # foot ring
        fy = h * _u(rng, 0.25, 0.4)
        pts = []
        for top, bot in tops:
            s = fy / top[1]
            pts.append(bot + (top - bot) * s)
        for p, q in zip(pts, pts[1:] + pts[:1]):
            a.add(cyl(p, q, lt * 0.35, seg=8), frame)
    if h > 0.6 and rng.random() < 0.45:  # bar stool backrest
        bh = _u(rng, 0.15, 0.3)
        for sx in (-1, 1):
            a.add(cyl((sx * sw * 0.3, h - 0.01, -sw * 0.35), (sx * sw * 0.3, h + bh, -sw * 0.42), 0.01, seg=8), frame)
        a.add(rbox((0, h + bh - 0.03, -sw * 0.42), (sw * 0.75, 0.07, 0.02), 0.02, axis="z"), fill)
    return a


def _chair_lounge(rng: np.random.Generator) -> Assembly:
    """Upholstered club armchair on short legs."""
    a = Assembly()
    fill = pick(rng, str(rng.choice(["fabric", "leather"])))
    legc = pick(rng, str(rng.choice(["dark_wood", "wood", "dark_metal"])))
    w, d = _u(rng, 0.65, 0.9), _u(rng, 0.65, 0.85)
    leg_h = _u(rng, 0.03, 0.18)
    base_h = _u(rng, 0.18, 0.28)
    arm_w = _u(rng, 0.08, 0.18)
    arm_h = _u(rng, 0.18, 0.3)
    back_h = _u(rng, 0.35, 0.6)
    back_t = _u(rng, 0.12, 0.22)
    y0 = leg_h
    for sx in (-1, 1):
        for sz in (-1, 1):
            a.add(cyl((sx * (w / 2 - 0.06), 0, sz * (d / 2 - 0.06)),
                      (sx * (w / 2 - 0.06), y0 + 0.01, sz * (d / 2 - 0.06)), 0.02, 0.015, seg=8), legc)
    a.add(pillow((0, y0 + base_h / 2, 0), (w, base_h, d), 0.03), fill)
    a.add(pillow((0, y0 + base_h + 0.05, back_t / 2), (w - 2 * arm_w, 0.12, d - back_t), 0.04), shade(fill, 1.05))
    a.add(pillow((0, y0 + base_h + back_h / 2 - 0.03, -d / 2 + back_t / 2), (w, back_h + 0.06, back_t), 0.04), fill)
    has_arms = rng.random() < 0.85
    if has_arms:
        for sx in (-1, 1):
            a.add(pillow((sx * (w / 2 - arm_w / 2), y0 + base_h + arm_h / 2 - 0.02, 0), (arm_w, arm_h, d), 0.04), fill)
    return a


def _chair_tulip(rng: np.random.Generator) -> Assembly:
    """Pedestal chair: round foot, single column, moulded shell seat (no casters)."""
    a = Assembly()
    shell = pick(rng, str(rng.choice(["plastic_light", "plastic_colour", "fabric"])))
    base = pick(rng, str(rng.choice(["plastic_light", "chrome", "dark_metal"])))
    sh = _u(rng, 0.42, 0.48)
    a.add(ycyl((0, 0, 0), _u(rng, 0.22, 0.28), 0.02, _u(rng, 0.1, 0.2), seg=28), base)
    a.add(ycyl((0, 0.01, 0), 0.04, sh - 0.05, 0.03, seg=14), base)
    w, d = _u(rng, 0.45, 0.55), _u(rng, 0.42, 0.5)
    a.add(rbox((0, sh - 0.02, 0), (w, 0.05, d), _u(rng, 0.1, 0.2)), shell)
    bh = _u(rng, 0.25, 0.45)
    back = rbox((0, sh + bh / 2, -d / 2 + 0.02), (w, bh + 0.05, 0.03), _u(rng, 0.05, 0.2), axis="z")
    a.add(rot_x(back, -_u(rng, 5, 15), (0, sh, -d / 2)), shell)
    if rng.random() < 0.5:
        for sx in (-1, 1):
            a.add(rbox((sx * (w / 2 - 0.03), sh + 0.08, -0.02), (0.03, 0.22, d * 0.8), 0.05, axis="x"), shell)
    return a


# ----------------------------------------------------------------------------- benches


#: Families of benchs as drawn (repeats weight the common kinds); the first draw of the generator.
BENCH_DRAW: tuple[str, ...] = ("park", "slab", "legs", "aframe", "box", "park")


def bench(rng: np.random.Generator) -> Assembly:
    """Benches: park bench, backless slab bench, four-leg bench, picnic A-frame, storage box bench."""
    family = str(rng.choice(BENCH_DRAW))
    a = Assembly()
    wood = pick(rng, "wood")
    metal = pick(rng, str(rng.choice(["dark_metal", "metal", "plastic_dark"])))
    L = _u(rng, 1.0, 2.0)
    d = _u(rng, 0.3, 0.5)
    sh = _u(rng, 0.4, 0.48)
    if family == "park":
        n = int(rng.integers(3, 6))
        sd = d / n * 0.8
        for i in range(n):
            z = -d / 2 + d * (i + 0.5) / n
            a.add(box((0, sh - 0.02, z), (L, 0.03, sd)), wood)
        bh = _u(rng, 0.3, 0.45)
        nb = int(rng.integers(2, 5))
        recline = _u(rng, 8, 20)
        for i in range(nb):
            y = sh + 0.08 + (bh - 0.08) * (i + 0.5) / nb
            a.add(rot_x(box((0, y, -d / 2 - 0.035), (L, bh / nb * 0.7, 0.03)), -recline, (0, sh, -d / 2)), wood)
        legx = L / 2 - _u(rng, 0.05, 0.2)
        for sx in (-1, 1) if L < 1.6 else (-1, 0, 1):
            x = sx * legx
            poly = np.array([(d / 2 + 0.01, 0.0), (d / 2 - 0.05, 0.0), (d / 2 - 0.04, sh - 0.08),
                             (-d / 2 + 0.01, sh - 0.08), (-d / 2 - 0.02, 0.0), (-d / 2 - 0.08, 0.0),
                             (-d / 2 - 0.02, sh - 0.03), (d / 2 + 0.01, sh - 0.03)])
            a.add(extrude_side(poly, x - 0.02, x + 0.02), metal)
            post = box((x, sh + bh / 2 - 0.05, -d / 2 - 0.05), (0.04, bh + 0.1, 0.03))
            a.add(rot_x(post, -recline, (0, sh, -d / 2)), metal)
            if rng.random() < 0.6 and sx != 0:
                a.add(box((x, sh + 0.2, 0), (0.04, 0.03, d)), metal)
                a.add(box((x, sh + 0.08, d / 2 - 0.03), (0.03, 0.26, 0.03)), metal)
    elif family == "slab":
        t = _u(rng, 0.04, 0.1)
        a.add(box((0, sh - t / 2, 0), (L, t, d)), wood)
        leg = metal if rng.random() < 0.4 else wood
        for sx in (-1, 1):
            x = sx * (L / 2 - _u(rng, 0.0, 0.25) - t / 2)
            a.add(box((x, (sh - t) / 2 + 0.005, 0), (t, sh - t + 0.01, d * _u(rng, 0.8, 1.0))), leg)
    elif family == "legs":
        t = _u(rng, 0.03, 0.06)
        top = pick(rng, str(rng.choice(["wood", "fabric", "leather"])))
        a.add(rbox((0, sh - t / 2, 0), (L, t, d), 0.02), top)
        lt = _u(rng, 0.03, 0.05)
        nl = 2 if L < 1.5 else 3
        for i in range(nl):
            x = -L / 2 + 0.06 + (L - 0.12) * i / (nl - 1)
            for sz in (-1, 1):
                a.add(box((x, (sh - t) / 2 + 0.005, sz * (d / 2 - 0.05)), (lt, sh - t + 0.01, lt)), wood)
        if rng.random() < 0.5:
            a.add(box((0, sh * 0.25, 0), (L - 0.12, 0.02, d * 0.8)), wood)
        if rng.random() < 0.4:  # back rail
            for i in range(nl):
                x = -L / 2 + 0.06 + (L - 0.12) * i / (nl - 1)
                a.add(box((x, sh + 0.2, -d / 2 + 0.02), (lt, 0.42, lt)), wood)
            a.add(box((0, sh + 0.36, -d / 2 + 0.02), (L, 0.1, 0.03)), wood)
    elif family == "aframe":
        t = _u(rng, 0.04, 0.06)
        for i in range(int(rng.integers(2, 4))):
            a.add(box((0, sh - t / 2, -d / 2 + d * (i + 0.5) / 3), (L, t, d / 3 * 0.9)), wood)
        for sx in (-1, 1):
            x = sx * (L / 2 - 0.15)
            for sz in (-1, 1):
                a.add(cyl((x, 0, sz * d * 0.6), (x, sh - t + 0.01, sz * d * 0.15), 0.025, seg=4), wood)
            a.add(box((x, sh - t - 0.03, 0), (0.05, 0.06, d * 1.1)), wood)
        a.add(box((0, sh - t - 0.05, 0), (L - 0.25, 0.04, 0.05)), wood)
    else:  # box / storage bench with cushion
        body = pick(rng, str(rng.choice(["painted", "wood"])))
        bh = sh - 0.06
        a.add(box((0, bh / 2, 0), (L * 0.8, bh, d)), body)
        a.add(pillow((0, bh + 0.03, 0), (L * 0.8, 0.07, d), 0.025), pick(rng, "fabric"))
        if rng.random() < 0.6:
            for sx in (-1, 1):
                a.add(box((sx * (L * 0.4 + 0.03), bh / 2 + 0.1, 0), (0.06, bh + 0.2, d)), body)
        if rng.random() < 0.5:
            a.add(box((0, bh + 0.25, -d / 2 + 0.03), (L * 0.8 + 0.12, 0.4, 0.06)), body)
    return a


# ----------------------------------------------------------------------------- sofas


#: Families of sofas as drawn (repeats weight the common kinds); the first draw of the generator.
SOFA_DRAW: tuple[str, ...] = ("standard", "sectional", "rolled", "midcentury", "armless", "chaise")


def sofa(rng: np.random.Generator) -> Assembly:
    """Sofas: boxy 2-3 seater, L-shaped sectional, rolled-arm chesterfield, mid-century on legs,
    armless futon, chaise lounge."""
    family = str(rng.choice(SOFA_DRAW))
    a = Assembly()
    fabric = pick(rng, str(rng.choice(["fabric", "fabric", "leather"])))
    cushion = shade(fabric, _u(rng, 0.9, 1.1))
    legc = pick(rng, str(rng.choice(["dark_wood", "wood", "chrome", "plastic_dark"])))
    n_seats = int(rng.choice([2, 3, 3, 4]))
    seat_w = _u(rng, 0.5, 0.7)
    arm_w = _u(rng, 0.1, 0.25) if family not in ("armless",) else 0.0
    L = n_seats * seat_w + 2 * arm_w
    d = _u(rng, 0.8, 1.0)
    leg_h = _u(rng, 0.12, 0.25) if family == "midcentury" else _u(rng, 0.0, 0.08)
    base_h = _u(rng, 0.15, 0.25)
    cush_h = _u(rng, 0.1, 0.18)
    back_h = _u(rng, 0.3, 0.5)
    back_t = _u(rng, 0.15, 0.28)
    arm_h = _u(rng, 0.15, 0.3)
    y0 = leg_h
    r = _u(rng, 0.02, 0.05)
    if leg_h > 0.01:
        for sx in (-1, 1):
            for sz in (-1, 1):
                p = np.array([sx * (L / 2 - 0.08), 0, sz * (d / 2 - 0.08)])
                flare = 0.02 if family == "midcentury" else 0.0
                a.add(cyl(p + [sx * flare, 0, sz * flare], p + [0, y0 + 0.01, 0], 0.015, 0.025, seg=8), legc)
    a.add(pillow((0, y0 + base_h / 2, 0), (L, base_h, d), r), fabric)
    seat_len = L - 2 * arm_w
    for i in range(n_seats):
        x = -seat_len / 2 + seat_w * (i + 0.5)
        a.add(pillow((x, y0 + base_h + cush_h / 2 - 0.01, back_t / 2), (seat_w - 0.01, cush_h, d - back_t), 0.03),
              cushion)
    a.add(pillow((0, y0 + base_h + back_h / 2, -d / 2 + back_t / 2), (L, back_h + 0.05, back_t), r), fabric)
    if rng.random() < 0.5:  # back cushions
        for i in range(n_seats):
            x = -seat_len / 2 + seat_w * (i + 0.5)
            a.add(rot_x(pillow((x, y0 + base_h + cush_h + back_h * 0.35, -d / 2 + back_t + 0.06),
                               (seat_w - 0.02, back_h * 0.75, 0.12), 0.04), -10, (x, y0 + base_h, -d / 2 + back_t)),
                  cushion)
    if arm_w > 0:
        for sx in (-1, 1):
            x = sx * (L / 2 - arm_w / 2)
            if family == "rolled":
                a.add(box((x, y0 + (base_h + arm_h) / 2, 0), (arm_w, base_h + arm_h, d)), fabric)
                a.add(cyl((x, y0 + base_h + arm_h, -d / 2), (x, y0 + base_h + arm_h, d / 2), arm_w * 0.75, seg=16),
                      fabric)
            else:
                a.add(pillow((x, y0 + (base_h + arm_h) / 2, 0), (arm_w, base_h + arm_h, d), r), fabric)
    if family == "sectional" or family == "chaise":
        side = float(rng.choice([-1, 1]))
        ext = _u(rng, 0.5, 0.9)
        x = side * (L / 2 - seat_w / 2 - arm_w)
        zc = d / 2 + ext / 2 - 0.05
        a.add(pillow((x, y0 + base_h / 2, zc), (seat_w + 0.1, base_h, ext + 0.1), r), fabric)
        a.add(pillow((x, y0 + base_h + cush_h / 2 - 0.01, zc), (seat_w, cush_h, ext), 0.03), cushion)
        if family == "sectional" and arm_w > 0:
            a.add(pillow((side * (L / 2 - arm_w / 2), y0 + (base_h + arm_h) / 2, d / 2 + ext / 2 - 0.05),
                         (arm_w, base_h + arm_h, ext + 0.1), r), fabric)
        if leg_h > 0.01:
            a.add(cyl((x, 0, d / 2 + ext - 0.1), (x, y0 + 0.01, d / 2 + ext - 0.1), 0.02, seg=8), legc)
    if rng.random() < 0.4:  # throw pillows
        pc = pick(rng, "fabric")
        for sx in (-1, 1):
            x = sx * (seat_len / 2 - 0.2)
            a.add(rot_x(pillow((x, y0 + base_h + cush_h + 0.17, -d / 2 + back_t + 0.05), (0.38, 0.38, 0.12), 0.05),
                        -15, (x, y0 + base_h + cush_h, -d / 2 + back_t)), pc)
    return a
