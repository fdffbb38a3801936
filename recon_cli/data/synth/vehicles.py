"""Airplanes, cars and vessels (nose / bow towards +z, width along x, +y up)."""

from __future__ import annotations

import numpy as np
from manifold3d import Manifold

from recon_cli.data.synth.materials import pick, shade
from recon_cli.data.synth.parts import (
    uniform as _u,
    Assembly, box, cyl, extrude_plan, extrude_side, hull, hull_pts, revolve_z, rot_z, rounded_rect, sphere, ycyl,
)

Colour = tuple[int, int, int]


# ----------------------------------------------------------------------------- airplanes


def _fuselage(length: float, radius: float, nose: float, tail: float, tail_up: float, seg: int = 20) -> Manifold:
    """Body of revolution along z (nose at +z); the tail cone is raised by ``tail_up``."""
    zs = np.linspace(-length / 2, length / 2, 15)
    prof = []
    for z in zs:
        t_nose = (z - (length / 2 - nose)) / nose
        t_tail = ((-length / 2 + tail) - z) / tail
        if t_nose > 0:
            r = radius * np.sqrt(max(1 - t_nose ** 2, 0.0))
        elif t_tail > 0:
            r = radius * (1 - 0.85 * t_tail)
        else:
            r = radius
        prof.append((max(r, radius * 0.04), z))
    poly = np.array([(0.0, zs[0])] + prof + [(0.0, zs[-1])])
    body = revolve_z(poly, seg=seg)
    lift = tail_up / tail

    def warp(p: tuple[float, float, float]) -> tuple[float, float, float]:
        x, y, z = p
        d = (-length / 2 + tail) - z
        return (x, y + lift * d * d / tail if d > 0 else y, z)

    return body.warp(warp)


def _airfoil(chord: float, thick: float, n: int = 8) -> np.ndarray:
    """(K, 2) (z, y) airfoil outline, leading edge at z = 0, trailing edge at z = -chord."""
    t = np.linspace(0, np.pi, n)
    z = -chord * (1 - np.cos(t)) / 2
    y = thick * chord * 0.5 * np.sin(t) * (1 - 0.5 * (1 - np.cos(t)) / 2)
    return np.concatenate([np.stack([z, y], 1), np.stack([z[::-1], -y[::-1] * 0.6], 1)[1:-1]])


def _wing(root: tuple[float, float, float], span: float, chord_root: float, chord_tip: float,
          sweep: float, dihedral: float, thick: float = 0.12) -> Manifold:
    """Right half-wing (x > 0): root leading edge at ``root``; tip at x + span."""
    rx, ry, rz = root
    af_r = _airfoil(chord_root, thick)
    af_t = _airfoil(chord_tip, thick)
    pts_r = np.stack([np.full(len(af_r), rx), ry + af_r[:, 1], rz + af_r[:, 0]], 1)
    tip_z = rz - span * np.tan(np.radians(sweep))
    pts_t = np.stack([np.full(len(af_t), rx + span), ry + span * np.tan(np.radians(dihedral)) + af_t[:, 1],
                      tip_z + af_t[:, 0]], 1)
    return hull_pts(np.concatenate([pts_r, pts_t]))


def _fin(z_le: float, y0: float, height: float, chord_root: float, chord_tip: float, sweep: float,
         thick: float = 0.1) -> Manifold:
    """Vertical fin in the plane x = 0, root leading edge at (0, y0, z_le)."""
    w = _wing((0.0, 0.0, 0.0), height, chord_root, chord_tip, sweep, 0.0, thick)
    w = rot_z(w, 90.0)  # span from +x to +y; thickness now along x
    return w.translate((0.0, y0, z_le))


#: Families of airplanes as drawn (repeats weight the common kinds); the first draw of the generator.
AIRPLANE_DRAW: tuple[str, ...] = ("airliner", "airliner", "bizjet", "fighter", "prop", "glider", "turboprop")


def airplane(rng: np.random.Generator) -> Assembly:
    """Airplanes: airliner (2/4 podded engines), business jet with T-tail and rear engines, delta
    fighter, propeller light aircraft, glider, high-wing turboprop."""
    family = str(rng.choice(AIRPLANE_DRAW))
    a = Assembly()
    body_c = pick(rng, "olive" if family == "fighter" and rng.random() < 0.5 else "aircraft")
    if family == "fighter" and rng.random() < 0.5:
        body_c = pick(rng, "navy_grey")
    accent = pick(rng, str(rng.choice(["aircraft", "car_paint", "metal"])))
    L = 1.0
    R = {"airliner": (0.045, 0.06), "bizjet": (0.05, 0.065), "fighter": (0.045, 0.06), "prop": (0.055, 0.07),
         "glider": (0.03, 0.04), "turboprop": (0.06, 0.075)}[family]
    r = _u(rng, *R)
    nose = r * _u(rng, 1.5, 3.0) if family != "fighter" else r * _u(rng, 4, 6)
    tail = L * _u(rng, 0.2, 0.35)
    a.add(_fuselage(L, r, nose, tail, r * 0.6 if family != "fighter" else 0.0), body_c)
    if family in ("airliner", "bizjet", "prop", "glider", "turboprop"):  # cockpit windows
        a.add(hull(sphere((0, r * 0.35, L / 2 - nose * 0.55), r * 0.55, 10),
                   sphere((0, r * 0.2, L / 2 - nose * 0.3), r * 0.45, 10)), pick(rng, "glass"))
    if family == "airliner":
        span = _u(rng, 0.42, 0.55)
        cr = _u(rng, 0.16, 0.22)
        wz = _u(rng, 0.02, 0.12)
        sweep, dih = _u(rng, 25, 35), _u(rng, 4, 7)
        wing = _wing((0, -r * 0.5, wz), span, cr, cr * _u(rng, 0.2, 0.35), sweep, dih)
        a.add_mirrored(wing, body_c)
        n_eng = 1 if rng.random() < 0.65 else 2
        for k in range(n_eng):
            s = 0.35 if n_eng == 1 else (0.28 + 0.32 * k)
            x = s * span
            y_w = -r * 0.5 + x * np.tan(np.radians(dih))       # wing chord line at this span
            z_le = wz - x * np.tan(np.radians(sweep))          # leading edge at this span
            ey = y_w - 0.045
            eng = cyl((x, ey, z_le - 0.07), (x, ey, z_le + 0.08), 0.03, 0.034, seg=14)
            pylon = box((x, (ey + y_w) / 2 + 0.01, z_le - 0.01), (0.008, y_w - ey + 0.02, 0.1))
            a.add_mirrored(eng, accent)
            a.add_mirrored(pylon, body_c)
        a.add(_fin(-L / 2 + tail * 0.8, r * 0.6, _u(rng, 0.13, 0.18), tail * 0.7, tail * 0.25, 40), accent)
        hs = _wing((0, r * 0.5, -L / 2 + tail * 0.5), _u(rng, 0.12, 0.17), tail * 0.45, tail * 0.18, 30, 6)
        a.add_mirrored(hs, body_c)
    elif family == "bizjet":
        span = _u(rng, 0.32, 0.42)
        cr = _u(rng, 0.14, 0.18)
        wing = _wing((0, -r * 0.6, 0.0), span, cr, cr * 0.35, _u(rng, 18, 30), 5)
        a.add_mirrored(wing, body_c)
        ez = -L / 2 + tail + 0.02
        eng = cyl((r + 0.04, r * 0.3, ez - 0.12), (r + 0.04, r * 0.3, ez + 0.02), 0.028, 0.03, seg=14)
        a.add_mirrored(eng, accent)
        a.add_mirrored(box(((r + 0.04) / 2, r * 0.3, ez - 0.05), (r + 0.04, 0.012, 0.06)), body_c)
        fh = _u(rng, 0.13, 0.17)
        a.add(_fin(-L / 2 + tail * 0.85, r * 0.6, fh, tail * 0.6, tail * 0.35, 45), body_c)
        hs = _wing((0, r * 0.6 + fh * 0.95, -L / 2 + tail * 0.85 - fh * np.tan(np.radians(45)) - 0.01), 0.11,
                   tail * 0.35, tail * 0.15, 30, 0)
        a.add_mirrored(hs, accent)
    elif family == "fighter":
        span = _u(rng, 0.22, 0.32)
        cr = _u(rng, 0.4, 0.55)
        wing = _wing((0, 0.0, -L / 2 + cr + 0.05), span, cr, cr * _u(rng, 0.05, 0.2), _u(rng, 45, 60), 0, 0.06)
        a.add_mirrored(wing, body_c)
        a.add(hull(sphere((0, r * 0.6, L / 2 - nose * 0.9), r * 0.5, 10),
                   sphere((0, r * 0.5, L / 2 - nose * 0.4), r * 0.3, 10)), pick(rng, "glass"))
        for sx in (-1, 1):  # intakes
            a.add(box((sx * r * 1.05, -r * 0.1, 0.02), (r * 0.7, r * 1.1, 0.35)), shade(body_c, 0.85))
        if rng.random() < 0.5:
            a.add(_fin(-L / 2 + 0.2, r * 0.5, _u(rng, 0.1, 0.15), 0.18, 0.06, 45, 0.06), body_c)
        else:
            for sx in (-1, 1):
                f = _fin(-L / 2 + 0.2, 0.0, 0.12, 0.16, 0.05, 45, 0.06)
                a.add(rot_z(f, -sx * 20).translate((sx * r * 0.4, r * 0.3, 0)), body_c)
        if rng.random() < 0.5:
            hs = _wing((0, 0, -L / 2 + 0.12), 0.12, 0.1, 0.04, 40, -3, 0.06)
            a.add_mirrored(hs, body_c)
        a.add(cyl((0, 0, -L / 2 - 0.02), (0, 0, -L / 2 + 0.1), r * 0.6, seg=14), pick(rng, "dark_metal"))
    elif family in ("prop", "turboprop", "glider"):
        high = family in ("glider", "turboprop") or rng.random() < 0.5
        span = {"prop": (0.45, 0.6), "turboprop": (0.55, 0.7), "glider": (0.9, 1.3)}[family]
        span = _u(rng, *span)
        cr = _u(rng, 0.1, 0.16) if family != "glider" else _u(rng, 0.07, 0.1)
        wy = r * 0.85 if high else -r * 0.6
        wz = _u(rng, 0.05, 0.18)
        sweep, dih = _u(rng, 0, 5), _u(rng, 1, 4)
        wing = _wing((0, wy, wz), span, cr, cr * _u(rng, 0.5, 1.0), sweep, dih)
        a.add_mirrored(wing, body_c if rng.random() < 0.7 else accent)
        if family == "prop":  # nose propeller and fixed gear
            a.add(sphere((0, 0, L / 2 + 0.005), r * 0.45, 12), accent)
            blade = box((0, 0.09, L / 2 + 0.02), (0.025, 0.18, 0.006))
            nb = int(rng.choice([2, 3]))
            for k in range(nb):
                a.add(rot_z(blade, 360.0 * k / nb + 15, (0, 0, 0)), pick(rng, "dark_metal"))
            for sx in (-1, 1):
                a.add(cyl((sx * 0.02, -r * 0.5, wz - 0.02), (sx * 0.08, -r - 0.07, wz - 0.03), 0.006, seg=6), body_c)
                a.add(cyl((sx * 0.08 - 0.01, -r - 0.07, wz - 0.03), (sx * 0.08 + 0.01, -r - 0.07, wz - 0.03),
                          0.025, seg=12), pick(rng, "rubber"))
        if family == "turboprop":
            for s in (0.3, 0.6) if rng.random() < 0.5 else (0.35,):
                x = s * span
                y = wy + x * np.tan(np.radians(dih)) - 0.012
                z_le = wz - x * np.tan(np.radians(sweep))
                a.add_mirrored(cyl((x, y, z_le - cr * 0.9), (x, y, z_le + 0.09), 0.03, 0.022, seg=12), body_c)
                blade = box((0, 0, z_le + 0.085), (0.015, 0.2, 0.01))
                for k in range(4):
                    a.add_mirrored(rot_z(blade, 45.0 * k + 10).translate((x, y, 0)), pick(rng, "dark_metal"))
        t_tail = family == "glider" or rng.random() < 0.3
        fh = _u(rng, 0.1, 0.15)
        a.add(_fin(-L / 2 + tail * 0.6, r * 0.6, fh, tail * 0.5, tail * 0.3, 30), accent)
        hy = r * 0.6 + fh * 0.95 if t_tail else r * 0.5
        hz = -L / 2 + tail * 0.6 - (fh * np.tan(np.radians(30)) if t_tail else 0) + 0.0
        a.add_mirrored(_wing((0, hy, hz), _u(rng, 0.1, 0.16), tail * 0.35, tail * 0.25, 5, 0), body_c)
    return a


# ----------------------------------------------------------------------------- cars


def _car_profile(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Body side profile (z, y), greenhouse profile (z, y), length, width, wheel radius."""
    L = {"sedan": (4.4, 5.0), "hatch": (3.7, 4.3), "suv": (4.4, 5.0), "sports": (4.2, 4.7),
         "pickup": (5.0, 5.8), "van": (4.6, 5.3), "wagon": (4.5, 5.0)}[kind]
    L = _u(rng, *L)
    W = _u(rng, 1.7, 2.0)
    wr = {"suv": 0.4, "pickup": 0.42, "sports": 0.33, "van": 0.36}.get(kind, 0.32) * _u(rng, 0.92, 1.08)
    clear = wr * _u(rng, 0.55, 0.8)
    belt = {"sports": 0.85, "suv": 1.15, "pickup": 1.15, "van": 1.1}.get(kind, 0.95) * _u(rng, 0.93, 1.05)
    roof = {"sports": 1.2, "suv": 1.75, "pickup": 1.8, "van": 2.0, "hatch": 1.5}.get(kind, 1.45) * _u(rng, 0.95, 1.05)
    f, b = L / 2, -L / 2
    hood = f - L * _u(rng, 0.22, 0.32)
    nose_y = belt - _u(rng, 0.05, 0.2)
    body = np.array([(f, clear + 0.1), (f - 0.05, nose_y), (hood, belt), (b + 0.1, belt + 0.02),
                     (b, belt - 0.1), (b, clear + 0.15), (b + 0.15, clear)] + [(f - 0.2, clear)])
    if kind == "van":
        hood = f - L * 0.12
        body[2] = (hood, belt)
    ws_top = hood - (roof - belt) * _u(rng, 0.9, 1.6) * (0.6 if kind == "van" else 1.0)
    if kind in ("sedan", "sports"):
        rear_top = b + L * _u(rng, 0.28, 0.38)
        deck = b + L * 0.06
        gh = [(hood, belt), (ws_top, roof), (rear_top, roof), (deck, belt)]
    elif kind == "pickup":
        cab_back = f - L * _u(rng, 0.5, 0.58)
        gh = [(hood, belt), (ws_top, roof), (cab_back, roof), (cab_back, belt)]
    else:  # hatch, suv, van, wagon: near-vertical tailgate
        gh = [(hood, belt), (ws_top, roof), (b + 0.12, roof - 0.04), (b + 0.02, belt)]
    return body, np.array(gh), L, W, wr


#: Families of cars as drawn (repeats weight the common kinds); the first draw of the generator.
CAR_DRAW: tuple[str, ...] = ("sedan", "sedan", "hatch", "suv", "sports", "pickup", "van", "wagon")


def car(rng: np.random.Generator) -> Assembly:
    """Cars: sedan, hatchback, SUV, sports coupe, pickup truck, van, estate."""
    kind = str(rng.choice(CAR_DRAW))
    a = Assembly()
    paint = pick(rng, "car_paint")
    glass = pick(rng, "glass")
    body, gh, L, W, wr = _car_profile(rng, kind)
    half = W / 2
    main = extrude_side(body, -half, half)
    # round the body a little: hull with a slightly narrower copy raised
    main = hull(main, extrude_side(body + [0, 0.04], -half + 0.08, half - 0.08))
    corner = _u(rng, 0.2, 0.5) if kind not in ("van", "pickup") else _u(rng, 0.1, 0.25)
    main = main ^ extrude_plan(rounded_rect(W, L, corner, 5), -0.1, 3.0)  # rounded corners in plan view
    cab_w = half - _u(rng, 0.1, 0.2)
    base = np.array([gh[0], gh[-1], gh[-1] + [0, -0.05], gh[0] + [0, -0.05]])
    top = np.array([gh[1], gh[2], gh[2] - [0, 0.03], gh[1] - [0, 0.03]])
    cabin = hull(extrude_side(base, -half + 0.02, half - 0.02), extrude_side(top, -cab_w, cab_w))
    f = L / 2
    wb_front = f - L * _u(rng, 0.16, 0.22)
    wb_rear = -f + L * _u(rng, 0.16, 0.22)
    tw = _u(rng, 0.2, 0.28)
    for z in (wb_front, wb_rear):  # wheel arches, cut at both sides only
        for sx in (-1, 1):
            main = main - cyl((sx * (half - tw * 0.75), wr, z), (sx * (half + 0.1), wr, z), wr * 1.1, seg=20)
    a.add(main, paint)
    a.add(cabin, glass)
    roof_y = gh[1][1]
    a.add(box((0, roof_y, (gh[1][0] + gh[2][0]) / 2), (2 * cab_w + 0.04, 0.04, abs(gh[1][0] - gh[2][0]) + 0.06)),
          paint)
    if kind == "pickup":
        bed_top = gh[0][1] + 0.05
        zb = gh[-1][0]
        for sx in (-1, 1):
            a.add(box((sx * (half - 0.04), bed_top - 0.15, (zb - L / 2) / 2), (0.08, 0.3, zb + L / 2)), paint)
        a.add(box((0, bed_top - 0.15, -L / 2 + 0.04), (W, 0.3, 0.08)), paint)
    wheel_c, hub_c = pick(rng, "rubber"), pick(rng, str(rng.choice(["chrome", "metal", "dark_metal"])))
    for z in (wb_front, wb_rear):
        a.add(cyl((-half + tw * 0.5, wr, z), (half - tw * 0.5, wr, z), wr * 0.25, seg=10), hub_c)  # axle
        for sx in (-1, 1):
            x0 = sx * (half - tw * 0.6)
            x1 = sx * (half + 0.02)
            a.add(cyl((x0, wr, z), (x1, wr, z), wr, seg=20), wheel_c)
            a.add(cyl((x1 - sx * 0.02, wr, z), (x1 + sx * 0.005, wr, z), wr * 0.6, seg=16), hub_c)
    light = pick(rng, "plastic_light")
    for sx in (-1, 1):
        a.add(box((sx * (half - max(0.25, corner + 0.15)), body[1][1] - 0.08, f - 0.03), (0.3, 0.1, 0.1)), light)
        a.add(box((sx * (half - max(0.2, corner + 0.12)), body[3][1] - 0.12, -f + 0.02), (0.25, 0.08, 0.06)),
              (170, 20, 20))
    a.add(box((0, body[0][1] + 0.05, f - 0.02), (W * 0.5, 0.12, 0.06)), pick(rng, "dark_metal"))
    if kind in ("suv", "van", "wagon") and rng.random() < 0.5:
        for sx in (-1, 1):
            a.add(box((sx * cab_w * 0.8, roof_y + 0.04, (gh[1][0] + gh[2][0]) / 2),
                      (0.04, 0.05, abs(gh[1][0] - gh[2][0]) * 0.8)), pick(rng, "dark_metal"))
    if kind == "sports" and rng.random() < 0.5:  # rear wing
        zr = -f + 0.15
        a.add(box((0, body[3][1] + 0.12, zr), (W * 0.8, 0.03, 0.25)), paint)
        for sx in (-1, 1):
            a.add(box((sx * W * 0.3, body[3][1] + 0.05, zr), (0.04, 0.14, 0.1)), paint)
    for sx in (-1, 1):  # side mirrors
        a.add(box((sx * (cab_w + 0.1), gh[0][1] + 0.02, gh[0][0] - 0.15), (0.15, 0.08, 0.05)), paint)
    return a


# ----------------------------------------------------------------------------- vessels


def _hull(L: float, B: float, depth: float, bow: float, stern_w: float, deadrise: float) -> Manifold:
    """Convex ship hull (deck at y = 0, keel below), bow at +z."""
    deck = []
    for z in np.linspace(-L / 2, L / 2, 12):
        t = (z - (L / 2 - bow)) / bow
        w = B / 2 * (np.sqrt(max(1 - t ** 2, 0)) if t > 0 else 1.0)
        if z < -L / 2 + 0.01:
            w = B / 2 * stern_w
        deck.append((w, z))
    deck = np.array(deck)
    top = np.concatenate([np.stack([deck[:, 0], np.zeros(len(deck)), deck[:, 1]], 1),
                          np.stack([-deck[:, 0], np.zeros(len(deck)), deck[:, 1]], 1)])
    keel_z = np.linspace(-L / 2 + 0.02, L / 2 - bow * 0.6, 6)
    kw = B * 0.5 * (1 - deadrise)
    bot = np.concatenate([np.stack([np.full(6, kw), np.full(6, -depth), keel_z], 1),
                          np.stack([np.full(6, -kw), np.full(6, -depth), keel_z], 1)])
    return hull_pts(np.concatenate([top, bot, [[0, -depth * 0.3, L / 2 + bow * 0.05]]]))


#: Families of vessels as drawn (repeats weight the common kinds); the first draw of the generator.
VESSEL_DRAW: tuple[str, ...] = (
    "sailboat", "sailboat", "yacht", "cargo", "warship", "rowboat", "submarine", "speedboat")


def vessel(rng: np.random.Generator) -> Assembly:
    """Vessels: sailboat, motor yacht, cargo / container ship, warship, rowing boat / canoe, submarine,
    speedboat."""
    kind = str(rng.choice(VESSEL_DRAW))
    a = Assembly()
    hull_c = pick(rng, "navy_grey" if kind == "warship" else "hull")
    deck_c = pick(rng, str(rng.choice(["wood", "plastic_light", "painted"])))
    white = pick(rng, "plastic_light")
    if kind == "submarine":
        L, R = 1.0, _u(rng, 0.045, 0.07)
        prof = [(0.0, -L / 2), (R * 0.2, -L / 2 + 0.01)]
        for z in np.linspace(-L / 2 + 0.02, L / 2, 14):
            tt = (z + L / 2) / L
            prof.append((R * min(1.0, 3 * tt, 2.2 * np.sqrt(max(1 - tt, 0.0)) + 0.02), z))
        prof.append((0.0, L / 2))
        c = pick(rng, str(rng.choice(["dark_metal", "navy_grey", "rubber"])))
        a.add(revolve_z(np.array(prof), seg=20), c)
        sz = L * _u(rng, 0.1, 0.25)
        a.add(extrude_plan(np.array([(-0.012, sz - 0.06), (0.012, sz - 0.06), (0.012, sz + 0.04), (0, sz + 0.07),
                                     (-0.012, sz + 0.04)]), 0, R + _u(rng, 0.05, 0.08)), c)
        a.add(box((0, R + 0.03, sz), (0.12, 0.008, 0.03)), c)
        a.add(box((0, 0, -L / 2 + 0.06), (R * 3, 0.006, 0.04)), c)
        a.add(box((0, 0, -L / 2 + 0.06), (0.006, R * 3, 0.04)), c)
        return a
    L = {"sailboat": 10, "yacht": 20, "cargo": 150, "warship": 130, "rowboat": 4, "speedboat": 7}[kind]
    ratio = {"sailboat": (0.28, 0.36), "yacht": (0.22, 0.3), "cargo": (0.13, 0.17), "warship": (0.1, 0.13),
             "rowboat": (0.25, 0.4), "speedboat": (0.3, 0.38)}[kind]
    B = L * _u(rng, *ratio)
    depth = B * _u(rng, 0.35, 0.6) if kind != "rowboat" else B * _u(rng, 0.3, 0.4)
    freeboard = depth * _u(rng, 0.3, 0.6)
    bow = L * _u(rng, 0.25, 0.4) if kind not in ("cargo",) else L * _u(rng, 0.1, 0.18)
    shell = _hull(L, B, depth, bow, _u(rng, 0.6, 0.95), _u(rng, 0.3, 0.8)).translate((0, freeboard, 0))
    if kind == "rowboat":
        inner = _hull(L * 0.9, B * 0.85, depth * 0.85, bow * 0.9, 0.8, 0.6).translate((0, freeboard + 0.01, 0))
        shell = shell - inner
        a.add(shell, hull_c)
        for z in (-L * 0.15, L * 0.12):
            a.add(box((0, freeboard - depth * 0.35, z), (B * 0.85, 0.04, 0.25)), deck_c)
        if rng.random() < 0.5:
            for sx in (-1, 1):
                a.add(cyl((sx * B * 0.45, freeboard, 0), (sx * B * 1.1, freeboard - depth, -L * 0.25), 0.03, seg=6),
                      deck_c)
        return a
    a.add(shell, hull_c)
    dt = L * 0.004
    a.add(_hull(L * 0.995, B * 0.995, dt, bow, 0.8, 0.0).translate((0, freeboard + dt / 2, 0)), deck_c)
    y = freeboard
    if kind == "sailboat":
        a.add(box((0, y + 0.3, -L * 0.1), (B * 0.45, 0.6, L * 0.3)), white)
        mz = L * _u(rng, 0.05, 0.2)
        mh = L * _u(rng, 0.8, 1.25)
        a.add(cyl((0, y, mz), (0, y + mh, mz), L * 0.008, seg=8), pick(rng, "metal"))
        sail = pick(rng, "sail")
        boom = L * _u(rng, 0.3, 0.45)
        a.add(extrude_side(np.array([(mz - 0.05, y + 1.0), (mz - 0.05, y + mh * 0.95), (mz - boom, y + 1.0)]),
                           -0.02, 0.02), sail)
        if rng.random() < 0.8:  # jib
            a.add(extrude_side(np.array([(mz + 0.05, y + 0.5), (mz + 0.05, y + mh * 0.85), (L * 0.45, y + 0.4)]),
                               -0.02, 0.02), sail)
        a.add(extrude_side(np.array([(-0.3, -depth + freeboard + 0.2), (0.5, -depth + freeboard + 0.2),
                                     (0.2, -depth + freeboard - 1.2), (-0.4, -depth + freeboard - 1.2)]),
                           -0.08, 0.08), hull_c)
    elif kind in ("yacht", "speedboat"):
        tiers = int(rng.integers(1, 4)) if kind == "yacht" else 1
        z0, z1 = -L * 0.42, L * _u(rng, 0.05, 0.2)
        w = B * 0.8
        th = L * 0.06 if kind == "yacht" else L * 0.08
        for i in range(tiers):
            poly = np.array([(z0, 0), (z1, 0), (z1 - th * 0.9, th), (z0, th)])
            a.add(extrude_side(poly, -w / 2, w / 2).translate((0, y + i * th, 0)), white)
            a.add(extrude_side(np.array([(z1 - 0.05, th * 0.35), (z1 - th * 0.75, th * 0.9), (z1 - th * 2.5, th * 0.9),
                                         (z1 - th * 2.5, th * 0.35)]), -w / 2 - 0.02, w / 2 + 0.02)
                  .translate((0, y + i * th, 0)), pick(rng, "glass"))
            mast_z = (z0 + z1 - th) / 2
            z0 += L * 0.05
            z1 -= L * _u(rng, 0.08, 0.15)
            w *= 0.9
        if kind == "yacht" and rng.random() < 0.6:
            top = y + tiers * th
            a.add(cyl((0, top - 0.1, mast_z), (0, top + L * 0.08, mast_z - 0.5), L * 0.008, seg=8), white)
    elif kind == "cargo":
        bz = -L * _u(rng, 0.32, 0.4)
        a.add(box((0, y + 10, bz), (B * 0.9, 20, L * 0.08)), white)
        a.add(box((0, y + 19, bz), (B * 1.05, 2, L * 0.06)), white)
        a.add(cyl((0, y + 15, bz - L * 0.02), (0, y + 28, bz - L * 0.02), B * 0.08, seg=12),
              pick(rng, "car_paint"))
        ncols = int(rng.integers(5, 9))
        zs = np.linspace(bz + L * 0.07, L * 0.3, ncols)
        for z in zs:
            hgt = 2.6 * int(rng.integers(1, 5))
            a.add(box((0, y + hgt / 2, z), (B * 0.85, hgt, (zs[1] - zs[0]) * 0.92)), pick(rng, "car_paint"))
    elif kind == "warship":
        grey = shade(hull_c, 1.08)
        a.add(box((0, y + 5, -L * 0.05), (B * 0.6, 10, L * 0.3)), grey)
        a.add(box((0, y + 12, L * 0.02), (B * 0.4, 6, L * 0.1)), grey)
        a.add(cyl((0, y + 14, L * 0.0), (0, y + 30, L * 0.0), 0.8, seg=6), grey)
        a.add(box((0, y + 26, 0), (8, 0.8, 0.8)), grey)
        a.add(box((0, y + 13, -L * 0.1), (4, 8, 6)), grey)
        for z in (L * 0.25, -L * 0.3) if rng.random() < 0.6 else (L * 0.25,):
            a.add(ycyl((0, y, z), 3.5, 2.5, seg=14), grey)
            a.add(cyl((0, y + 1.6, z), (0, y + 1.6, z + np.sign(z) * 10), 0.3, seg=6), grey)
    return a
