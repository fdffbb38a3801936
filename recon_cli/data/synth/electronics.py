"""Displays, loudspeakers and telephones (screen / drivers / keypad facing +z)."""

from __future__ import annotations

import numpy as np
from manifold3d import Manifold

from recon_cli.data.synth.materials import pick, shade
from recon_cli.data.synth.parts import (
    uniform as _u,
    Assembly, box, cyl, extrude_side, hull, rbox, revolve_y, revolve_z, rot_x, sphere, ycyl,
)

Colour = tuple[int, int, int]


# ----------------------------------------------------------------------------- displays


#: Families of displays as drawn (repeats weight the common kinds); the first draw of the generator.
DISPLAY_DRAW: tuple[str, ...] = (
    "monitor", "monitor", "monitor", "tv_feet", "tv_feet", "crt", "allinone", "panel", "arm")


def display(rng: np.random.Generator) -> Assembly:
    """Displays: flat monitor on neck + base, TV on two feet, CRT monitor, iMac-style all-in-one,
    wall panel / TV without stand, monitor on a round-base arm."""
    family = str(rng.choice(DISPLAY_DRAW))
    a = Assembly()
    frame = pick(rng, str(rng.choice(["plastic_dark", "plastic_dark", "plastic_light", "metal"])))
    screen = pick(rng, "screen")
    aspect = _u(rng, 1.3, 1.9) if family != "crt" else _u(rng, 1.2, 1.35)
    W = _u(rng, 0.5, 0.7) if family != "tv_feet" else _u(rng, 0.9, 1.4)
    H = W / aspect
    bez = _u(rng, 0.01, 0.04) if family != "crt" else _u(rng, 0.03, 0.06)
    chin = _u(rng, 0.0, 0.04) if family != "allinone" else _u(rng, 0.06, 0.12)
    T = _u(rng, 0.02, 0.05)
    stand_h = {"monitor": (0.1, 0.2), "tv_feet": (0.05, 0.12), "crt": (0.0, 0.02), "allinone": (0.08, 0.15),
               "panel": (0.0, 0.0), "arm": (0.15, 0.3)}[family]
    y0 = _u(rng, *stand_h)
    cy = y0 + chin + H / 2
    if family == "crt":
        D = W * _u(rng, 0.8, 1.0)
        a.add(rbox((0, cy, -T / 2), (W + 2 * bez, H + 2 * bez + chin, T * 2), 0.02, axis="z"), frame)
        a.add(hull(box((0, cy, -T), (W * 0.95, H * 0.95, 0.01)),
                   box((0, cy - H * 0.05, -D), (W * 0.55, H * 0.55, 0.01))), frame)
        a.add(box((0, cy, T / 2 + 0.004), (W, H, 0.01)), screen)
        a.add(box((0, cy - H * 0.35, -D * 0.4), (W * 0.6, H * 0.4, D * 0.5)), frame)
        return a
    panel = rbox((0, cy, 0), (W + 2 * bez, H + 2 * bez + chin, T), _u(rng, 0.0, 0.015), axis="z")
    a.add(panel.translate((0, -chin / 2, 0)), frame)
    a.add(box((0, cy, T / 2), (W, H, 0.006)), screen)
    back_d = _u(rng, 0.0, 0.05)
    if back_d > 0.025:
        a.add(hull(box((0, cy, -T / 2), (W * 0.7, H * 0.6, 0.01)),
                   box((0, cy - H * 0.05, -T / 2 - back_d), (W * 0.4, H * 0.3, 0.01))), frame)
    stand = pick(rng, str(rng.choice(["plastic_dark", "metal", "chrome"]))) if rng.random() < 0.5 else frame
    bottom = cy - H / 2 - bez - chin
    if family in ("monitor", "allinone"):
        bz = -T / 2 - 0.01
        if family == "allinone" or rng.random() < 0.4:  # slanted L foot
            a.add(rot_x(box((0, (bottom + H * 0.3) / 2, bz), (W * 0.25, bottom + H * 0.3, 0.015)), 12,
                        (0, 0, bz)), stand)
        else:
            a.add(box((0, (bottom + H * 0.35) / 2, bz), (0.05, bottom + H * 0.35, 0.03)), stand)
        if rng.random() < 0.5:
            a.add(rbox((0, 0.006, bz + 0.03), (W * _u(rng, 0.3, 0.5), 0.012, _u(rng, 0.15, 0.22)), 0.03), stand)
        else:
            a.add(ycyl((0, 0, bz + 0.03), _u(rng, 0.08, 0.12), 0.012, seg=28), stand)
    elif family == "tv_feet":
        if rng.random() < 0.5:
            for sx in (-1, 1):
                x = sx * W * _u(rng, 0.3, 0.45)
                a.add(box((x, bottom / 2 + 0.01, 0), (0.03, bottom + 0.02, 0.02)), stand)
                a.add(box((x, 0.008, 0), (0.04, 0.016, 0.25)), stand)
        else:
            a.add(box((0, bottom / 2 + 0.01, -T / 2), (0.12, bottom + 0.02, 0.03)), stand)
            a.add(rbox((0, 0.008, -0.02), (W * 0.4, 0.016, 0.25), 0.03), stand)
    elif family == "arm":
        a.add(ycyl((0, 0, -0.1), 0.11, 0.02, seg=28), stand)
        a.add(cyl((0, 0.01, -0.1), (0, cy - 0.05, -0.14), 0.015, seg=10), stand)
        a.add(cyl((0, cy - 0.05, -0.14), (0, cy, 0.0), 0.015, seg=10), stand)
    return a


# ----------------------------------------------------------------------------- loudspeakers


def _driver(a: Assembly, rng: np.random.Generator, center: tuple[float, float, float], r: float,
            cone: Colour, ring: Colour) -> None:
    """A driver on the front face (z = center z): surround ring, cone and dust cap."""
    x, y, z = center
    a.add(cyl((x, y, z - 0.005), (x, y, z + 0.008), r, seg=24), ring)
    a.add(revolve_z(np.array([(0.0, z), (r * 0.9, z), (r * 0.9, z + 0.01), (r * 0.3, z + 0.004),
                              (0.0, z + 0.004)]), center=(x, y, 0), seg=24), cone)
    a.add(sphere((x, y, z + 0.004), r * 0.28, 12), shade(cone, 1.3))


#: Families of loudspeakers as drawn (repeats weight the common kinds); the first draw of the generator.
LOUDSPEAKER_DRAW: tuple[str, ...] = ("bookshelf", "bookshelf", "tower", "tower", "sub", "pa", "cylinder", "stand")


def loudspeaker(rng: np.random.Generator) -> Assembly:
    """Loudspeakers: bookshelf box, floor-standing tower, subwoofer cube, PA cabinet with horn,
    cylindrical smart speaker, speaker on a stand."""
    family = str(rng.choice(LOUDSPEAKER_DRAW))
    a = Assembly()
    body = pick(rng, str(rng.choice(["plastic_dark", "dark_wood", "wood", "plastic_light", "painted"])))
    cone = pick(rng, str(rng.choice(["plastic_dark", "plastic_dark", "metal", "plastic_light"])))
    ring = pick(rng, "rubber")
    if family == "cylinder":
        h, r = _u(rng, 0.15, 0.3), _u(rng, 0.05, 0.09)
        prof = np.array([(0.0, 0.0), (r * 0.9, 0.0), (r, 0.02), (r, h * 0.9), (r * _u(rng, 0.6, 1.0), h),
                         (0.0, h)])
        fabric = pick(rng, "fabric")
        a.add(revolve_y(prof, seg=32), fabric)
        a.add(ycyl((0, h - 0.004, 0), r * 0.7, 0.008, seg=28), body)
        return a
    dims = {"bookshelf": ((0.15, 0.25), (0.25, 0.38), (0.2, 0.3)), "tower": ((0.18, 0.28), (0.85, 1.15), (0.25, 0.35)),
            "sub": ((0.3, 0.45), (0.3, 0.45), (0.3, 0.45)), "pa": ((0.35, 0.5), (0.55, 0.75), (0.3, 0.4)),
            "stand": ((0.15, 0.22), (0.22, 0.32), (0.18, 0.25))}[family]
    W, H, D = (_u(rng, *r) for r in dims)
    y0 = 0.0
    if family == "stand":
        y0 = _u(rng, 0.5, 0.7)
        sc = pick(rng, "dark_metal")
        a.add(box((0, 0.01, 0), (W * 1.4, 0.02, D * 1.2)), sc)
        a.add(box((0, y0 / 2, 0), (0.05, y0, 0.05)), sc)
        a.add(box((0, y0 - 0.005, 0), (W, 0.02, D)), sc)
    if family == "tower" and rng.random() < 0.5:
        y0 = 0.03
        a.add(box((0, 0.02, 0), (W + 0.06, 0.04, D + 0.06)), shade(body, 0.6))
    if family == "pa":  # trapezoid: narrower at the back
        poly = np.array([(D / 2, 0.0), (D / 2, H), (-D / 2, H * 0.9), (-D / 2, H * 0.1)])
        cab = hull(extrude_side(poly, -W / 2, W / 2), extrude_side(poly, -W * 0.35, W * 0.35).translate((0, 0, -0.001)))
        a.add(cab, body)
    else:
        a.add(rbox((0, y0 + H / 2, 0), (W, H, D), _u(rng, 0.0, 0.03)), body)
    fz = D / 2
    big = min(W, H) * _u(rng, 0.32, 0.42)
    if family == "sub":
        _driver(a, rng, (0, H / 2, fz), min(W, H) * 0.4, cone, ring)
        if rng.random() < 0.5:
            for sx in (-1, 1):
                for sz in (-1, 1):
                    a.add(cyl((sx * W * 0.4, -0.03, sz * D * 0.4), (sx * W * 0.4, 0.005, sz * D * 0.4), 0.02, seg=10),
                          ring)
    elif family == "pa":
        _driver(a, rng, (0, H * 0.33, fz), W * 0.4, cone, ring)
        horn = pick(rng, "plastic_dark")
        a.add(extrude_side(np.array([(fz + 0.005, H * 0.68), (fz + 0.005, H * 0.92), (fz - 0.01, H * 0.92),
                                     (fz - 0.01, H * 0.68)]), -W * 0.4, W * 0.4), horn)
    elif family == "tower":
        n = int(rng.integers(1, 4))
        rr = W * _u(rng, 0.32, 0.4)
        ty = y0 + H - W * 0.35
        _driver(a, rng, (0, ty, fz), W * 0.13, cone, ring)
        for i in range(n):
            _driver(a, rng, (0, ty - W * 0.3 - rr - i * (2 * rr + 0.03), fz), rr, cone, ring)
    else:
        ty = y0 + H - min(W, H) * 0.22
        _driver(a, rng, (0, ty, fz), min(W, H) * 0.12, cone, ring)
        _driver(a, rng, (0, y0 + H * 0.38, fz), big, cone, ring)
    if rng.random() < 0.3 and family in ("bookshelf", "tower"):
        a.add(cyl((0, y0 + H * 0.1, fz - 0.004), (0, y0 + H * 0.1, fz + 0.004), 0.015, seg=12), ring)
    return a


# ----------------------------------------------------------------------------- telephones


#: Families of telephones as drawn (repeats weight the common kinds); the first draw of the generator.
TELEPHONE_DRAW: tuple[str, ...] = (
    "smartphone", "smartphone", "smartphone", "bar", "flip", "desk", "cordless", "qwerty")


def telephone(rng: np.random.Generator) -> Assembly:
    """Telephones: smartphone, bar phone with keypad, open flip phone, desk phone with handset,
    cordless handset in a dock, slider/QWERTY phone."""
    family = str(rng.choice(TELEPHONE_DRAW))
    a = Assembly()
    body = pick(rng, str(rng.choice(["plastic_dark", "plastic_light", "metal", "plastic_colour"])))
    screen = pick(rng, "screen")
    key = pick(rng, str(rng.choice(["plastic_light", "metal", "plastic_dark"])))
    if family == "smartphone":
        W, H, T = _u(rng, 0.062, 0.08), _u(rng, 0.12, 0.165), _u(rng, 0.007, 0.011)
        a.add(rbox((0, H / 2, 0), (W, H, T), W * _u(rng, 0.08, 0.2), axis="z", seg=6), body)
        bz = _u(rng, 0.002, 0.006)
        a.add(rbox((0, H / 2, T / 2), (W - 2 * bz, H - 2 * bz - _u(rng, 0.0, 0.02), 0.001), W * 0.08, axis="z"),
              screen)
        a.add(rbox((-W * 0.25, H * 0.88, -T / 2), (W * 0.3, W * 0.3, 0.002), 0.004, axis="z"), shade(body, 0.7))
        return a
    if family in ("bar", "qwerty"):
        W, H, T = _u(rng, 0.045, 0.06), _u(rng, 0.1, 0.13), _u(rng, 0.012, 0.02)
        if family == "qwerty":
            W, H = H * 0.6, H * 0.9
        a.add(rbox((0, H / 2, 0), (W, H, T), W * 0.2, axis="z"), body)
        a.add(box((0, H * 0.72, T / 2), (W * 0.75, H * 0.32, 0.002)), screen)
        rows, cols = (4, 3) if family == "bar" else (4, 8)
        kw = W * 0.8 / cols
        kh = H * 0.42 / rows
        for i in range(rows):
            for j in range(cols):
                a.add(box((-W * 0.4 + kw * (j + 0.5), H * 0.06 + kh * (i + 0.5), T / 2),
                          (kw * 0.75, kh * 0.7, 0.003)), key)
        if family == "bar" and rng.random() < 0.4:
            a.add(cyl((W * 0.3, H - 0.005, -T * 0.2), (W * 0.3, H + 0.03, -T * 0.2), 0.003, seg=8), body)
        return a
    if family == "flip":
        W, H, T = _u(rng, 0.045, 0.055), _u(rng, 0.085, 0.1), _u(rng, 0.008, 0.012)
        a.add(rbox((0, H / 2, 0), (W, H, T), W * 0.2, axis="z"), body)
        for i in range(4):
            for j in range(3):
                a.add(box((-W * 0.3 + W * 0.3 * j, H * 0.12 + H * 0.16 * i, T / 2), (W * 0.22, H * 0.1, 0.002)), key)
        ang = _u(rng, 10, 35)
        lid = rbox((0, H + H / 2, 0), (W, H, T), W * 0.2, axis="z")
        scr = box((0, H + H * 0.55, T / 2), (W * 0.8, H * 0.6, 0.002))
        a.add(rot_x(lid, -ang, (0, H, -T / 2)), body)
        a.add(rot_x(scr, -ang, (0, H, -T / 2)), screen)
        a.add(cyl((-W / 2, H, -T * 0.1), (W / 2, H, -T * 0.1), T * 0.6, seg=12), shade(body, 0.8))
        return a
    if family == "desk":
        W, D = _u(rng, 0.18, 0.24), _u(rng, 0.18, 0.22)
        hb, hf = _u(rng, 0.06, 0.09), _u(rng, 0.02, 0.035)
        base = extrude_side(np.array([(D / 2, 0.0), (D / 2, hf), (-D / 2, hb), (-D / 2, 0.0)]), -W / 2, W / 2)
        a.add(hull(base, extrude_side(np.array([(D / 2 - 0.01, 0.0), (D / 2 - 0.01, hf + 0.005),
                                                (-D / 2 + 0.01, hb + 0.005), (-D / 2 + 0.01, 0.0)]),
                                      -W / 2 + 0.01, W / 2 - 0.01)), body)
        slope = np.degrees(np.arctan2(hb - hf, D))
        side = float(rng.choice([-1, 1, 1]))  # handset usually on the left (x < 0), keypad opposite
        kx = W * 0.15 * side
        for i in range(4):
            for j in range(3):
                z = D * 0.3 - i * 0.025
                y = hf + (D / 2 - z) * (hb - hf) / D + 0.003
                a.add(rot_x(box((kx + (j - 1) * 0.022, y, z), (0.016, 0.006, 0.016)), slope, (0, y, z)), key)
        hx = -W * 0.2 * side
        hand = pick(rng, "plastic_dark") if rng.random() < 0.5 else body
        a.add(cyl((hx, hb + 0.015, -D / 2 + 0.01), (hx, hf + 0.02, D / 2 - 0.01), 0.014, seg=10), hand)
        for z in (-D / 2 + 0.02, D / 2 - 0.02):
            y = hb + 0.015 if z < 0 else hf + 0.02
            a.add(rbox((hx, y, z), (0.045, 0.025, 0.045), 0.015), hand)
        if rng.random() < 0.5:
            a.add(box((kx, hb * 0.8, -D * 0.3), (W * 0.4, 0.003, D * 0.2)), screen)
        return a
    # cordless: dock + upright handset leaning back
    W, H, T = _u(rng, 0.045, 0.055), _u(rng, 0.14, 0.18), _u(rng, 0.02, 0.03)
    a.add(rbox((0, 0.02, 0), (W * 2, 0.04, W * 2), 0.02), shade(body, 0.7))
    hand = rbox((0, 0.02 + H / 2, 0), (W, H, T), W * 0.3, axis="z")
    scr = box((0, 0.02 + H * 0.75, T / 2), (W * 0.75, H * 0.2, 0.002))
    keys: list[Manifold] = [box((-W * 0.25 + W * 0.25 * j, 0.02 + H * 0.15 + H * 0.09 * i, T / 2),
                                (W * 0.18, H * 0.05, 0.003)) for i in range(4) for j in range(3)]
    tilt = _u(rng, 5, 15)
    a.add(rot_x(hand, -tilt, (0, 0.02, 0)), body)
    a.add(rot_x(scr, -tilt, (0, 0.02, 0)), screen)
    for k in keys:
        a.add(rot_x(k, -tilt, (0, 0.02, 0)), key)
    return a
