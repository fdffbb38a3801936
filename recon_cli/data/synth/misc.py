"""Lamps (front +z) and rifles (muzzle towards +z, stock at -z, thin along x)."""

from __future__ import annotations

import numpy as np
from manifold3d import Manifold

from recon_cli.data.synth.materials import pick
from recon_cli.data.synth.parts import (
    uniform as _u,
    Assembly, box, cyl, extrude_side, revolve_y, rot_x, sphere, ycyl,
)

Colour = tuple[int, int, int]


# ----------------------------------------------------------------------------- lamps


def _shade_shell(r_bottom: float, r_top: float, h: float, y0: float, t: float = 0.006,
                 center: tuple[float, float] = (0.0, 0.0), seg: int = 28) -> Manifold:
    """Open lampshade (thin frustum shell) from y0 to y0 + h."""
    prof = np.array([(r_bottom, 0.0), (r_top, h), (r_top - t, h), (r_bottom - t, 0.0)])
    return revolve_y(prof, center=(center[0], y0, center[1]), seg=seg)


def _bell(r: float, h: float, y_top: float, center: tuple[float, float, float] = (0.0, 0.0, 0.0),
          t: float = 0.006, seg: int = 24) -> Manifold:
    """Bell / dome shade hanging down from ``y_top`` (open at the bottom)."""
    a = np.linspace(0, np.pi / 2, 8)
    outer = [(0.0, 0.0)] + [(0.02 + (r - 0.02) * np.sin(v), -h * (1 - np.cos(v))) for v in a]
    inner = [(0.02 + (r - t - 0.02) * np.sin(v), -t - (h - t) * (1 - np.cos(v))) for v in a[::-1]]
    prof = np.array(outer + inner + [(0.0, -t)])
    cx, cy, cz = center
    return revolve_y(prof, center=(cx, y_top + cy, cz), seg=seg)


#: Families of lamps as drawn (repeats weight the common kinds); the first draw of the generator.
LAMP_DRAW: tuple[str, ...] = ("table", "table", "floor", "desk_arm", "pendant", "torchiere", "arc", "chandelier")


def lamp(rng: np.random.Generator) -> Assembly:
    """Lamps: table lamp with drum/cone shade, floor lamp, articulated desk lamp, pendant,
    torchiere uplighter, arc floor lamp, multi-arm chandelier."""
    family = str(rng.choice(LAMP_DRAW))
    a = Assembly()
    metal = pick(rng, str(rng.choice(["chrome", "brass", "dark_metal", "metal"])))
    shade_c = pick(rng, "shade")
    if family == "table":
        H = _u(rng, 0.3, 0.45)
        base = pick(rng, str(rng.choice(["ceramic", "ceramic", "brass", "wood"])))
        r = _u(rng, 0.05, 0.1)
        if rng.random() < 0.6:  # vase body
            ys = np.linspace(0, H * 0.6, 9)
            bulge = _u(rng, 0.6, 1.0)
            prof = [(0.0, 0.0)] + [(r * (0.5 + bulge * np.sin(np.pi * y / (H * 0.6)) * 0.6), y) for y in ys] + \
                   [(0.0, H * 0.6)]
            a.add(revolve_y(np.array(prof), seg=24), base)
        else:  # stick on a disc base
            a.add(ycyl((0, 0, 0), r * 1.2, 0.025, seg=24), base)
            a.add(ycyl((0, 0, 0), 0.012, H * 0.6, seg=10), metal)
        sr = _u(rng, 0.1, 0.2)
        sh = _u(rng, 0.12, 0.22)
        k_top = _u(rng, 0.55, 1.0)
        a.add(_shade_shell(sr, sr * k_top, sh, H * 0.62), shade_c)
        bar_y = H * 0.62 + sh * 0.7
        bar_r = sr + (sr * k_top - sr) * 0.7 - 0.002
        a.add(ycyl((0, H * 0.58, 0), 0.008, bar_y - H * 0.58, seg=8), metal)
        a.add(cyl((-bar_r, bar_y, 0), (bar_r, bar_y, 0), 0.004, seg=6), metal)
        a.add(sphere((0, H * 0.62 + sh * 0.4, 0), 0.03, 10), (250, 250, 235))
    elif family in ("floor", "torchiere"):
        H = _u(rng, 1.4, 1.8)
        a.add(ycyl((0, 0, 0), _u(rng, 0.12, 0.18), 0.03, _u(rng, 0.1, 0.16), seg=28), metal)
        a.add(ycyl((0, 0.02, 0), 0.012, H - 0.02, seg=10), metal)
        if rng.random() < 0.3:  # tripod legs instead of a disc look
            for k in range(3):
                ang = 2 * np.pi * k / 3
                a.add(cyl((np.sin(ang) * 0.25, 0, np.cos(ang) * 0.25), (0, H * 0.35, 0), 0.01, seg=8), metal)
        if family == "floor":
            sr = _u(rng, 0.15, 0.25)
            sh = _u(rng, 0.2, 0.35)
            k_top = _u(rng, 0.6, 1.0)
            a.add(_shade_shell(sr, sr * k_top, sh, H - sh * 0.7), shade_c)
            bar_r = sr + (sr * k_top - sr) * 0.7 - 0.002
            a.add(cyl((-bar_r, H, 0), (bar_r, H, 0), 0.005, seg=6), metal)
        else:
            sr = _u(rng, 0.15, 0.25)
            prof = np.array([(0.0, 0.0), (0.03, 0.0), (sr, 0.12), (sr - 0.01, 0.13), (0.025, 0.015), (0.0, 0.015)])
            a.add(revolve_y(prof, center=(0, H - 0.06, 0), seg=28), shade_c if rng.random() < 0.5 else metal)
    elif family == "arc":
        H = _u(rng, 1.6, 2.0)
        reach = _u(rng, 0.8, 1.4)
        a.add(box((0, 0.05, -0.1), (0.3, 0.1, 0.22)), pick(rng, str(rng.choice(["ceramic", "dark_metal"]))))
        pts = [np.array([0.0, 0.0, -0.1])]
        for t in np.linspace(0.1, 1.0, 9):
            ang = t * np.pi * 0.6
            pts.append(np.array([0.0, H * np.sin(ang + 0.15) / np.sin(np.pi * 0.6 + 0.15) * 0.9 + 0.1 * t,
                                 -0.1 + reach * (1 - np.cos(ang)) / (1 - np.cos(np.pi * 0.6))]))
        for p, q in zip(pts[:-1], pts[1:]):
            a.add(cyl(p, q, 0.012, seg=8), metal)
            a.add(sphere(q, 0.012, 8), metal)
        tip = pts[-1]
        a.add(_bell(_u(rng, 0.15, 0.25), _u(rng, 0.1, 0.2), 0.0, center=(tip[0], tip[1] + 0.005, tip[2])), shade_c)
    elif family == "desk_arm":
        first = a.mark()
        turn = _u(rng, -70, 70) if rng.random() < 0.6 else 0.0  # arm swung sideways
        base_r = _u(rng, 0.07, 0.1)
        if rng.random() < 0.5:
            a.add(ycyl((0, 0, 0), base_r, 0.03, seg=24), metal)
        else:
            a.add(box((0, 0.015, 0), (base_r * 2, 0.03, base_r * 2)), metal)
        l1, l2 = _u(rng, 0.3, 0.42), _u(rng, 0.28, 0.4)
        a1 = np.radians(_u(rng, 60, 85))
        a2 = np.radians(_u(rng, -30, 20))
        p0 = np.array([0.0, 0.03, -0.03])
        p1 = p0 + l1 * np.array([0, np.sin(a1), np.cos(a1)])
        p2 = p1 + l2 * np.array([0, np.sin(a2), np.cos(a2)])
        arm = pick(rng, str(rng.choice(["plastic_colour", "dark_metal", "chrome"])))
        for p, q in ((p0, p1), (p1, p2)):
            for sx in (-1, 1):
                a.add(cyl(p + [sx * 0.012, 0, 0], q + [sx * 0.012, 0, 0], 0.006, seg=8), arm)
        a.add(cyl(p1 - [0.02, 0, 0], p1 + [0.02, 0, 0], 0.015, seg=12), arm)
        a.add(sphere(p0, 0.02, 10), arm)
        head = rot_x(_bell(_u(rng, 0.06, 0.09), _u(rng, 0.08, 0.14), 0.0), -_u(rng, 20, 50))
        a.add(head.translate(tuple(p2 + [0, 0.005, 0])), arm)
        a.add(sphere(p2, 0.018, 10), arm)
        a.turn_since(first, turn)
    elif family == "pendant":
        L = _u(rng, 0.4, 1.0)
        a.add(ycyl((0, L, 0), 0.05, 0.025, seg=20), metal)
        a.add(ycyl((0, -0.01, 0), 0.004, L + 0.02, seg=6), pick(rng, "rubber"))
        r = _u(rng, 0.12, 0.3)
        if rng.random() < 0.6:
            a.add(_bell(r, r * _u(rng, 0.5, 1.0), 0.0), shade_c)
        else:
            a.add(_shade_shell(r, r * 0.6, r * 0.8, -r * 0.8 + 0.01), shade_c)
            a.add(cyl((-r * 0.6 + 0.003, 0.004, 0), (r * 0.6 - 0.003, 0.004, 0), 0.004, seg=6), metal)
    else:  # chandelier: hanging centre with several arms and small shades
        L = _u(rng, 0.3, 0.7)
        a.add(ycyl((0, L, 0), 0.06, 0.02, seg=20), metal)
        a.add(ycyl((0, 0, 0), 0.008, L, seg=8), metal)
        a.add(sphere((0, 0, 0), 0.04, 12), metal)
        n = int(rng.integers(3, 8))
        reach = _u(rng, 0.2, 0.4)
        for k in range(n):
            ang = 2 * np.pi * k / n
            tip = np.array([np.sin(ang) * reach, 0.08, np.cos(ang) * reach])
            a.add(cyl((0, 0, 0), tip * [1, 0, 1], 0.008, seg=6), metal)
            a.add(cyl(tip * [1, 0, 1], tip, 0.008, seg=6), metal)
            a.add(_shade_shell(0.06, 0.04, 0.08, 0.06, center=(tip[0], tip[2]), seg=14), shade_c)
            a.add(ycyl((tip[0], 0.055, tip[2]), 0.058, 0.012, seg=14), metal)
    return a


# ----------------------------------------------------------------------------- rifles


#: Families of rifles as drawn (repeats weight the common kinds); the first draw of the generator.
RIFLE_DRAW: tuple[str, ...] = ("bolt", "ar", "ak", "sniper", "shotgun", "bullpup")


def rifle(rng: np.random.Generator) -> Assembly:
    """Rifles: bolt-action hunting rifle (optional scope), AR-style carbine, AK-style rifle,
    sniper rifle with bipod, pump shotgun, bullpup."""
    family = str(rng.choice(RIFLE_DRAW))
    a = Assembly()
    steel = pick(rng, "dark_metal")
    wood = pick(rng, str(rng.choice(["wood", "dark_wood"])))
    poly_c = pick(rng, str(rng.choice(["plastic_dark", "olive", "plastic_dark"])))
    furn = wood if family in ("bolt", "ak", "shotgun") and rng.random() < 0.8 else poly_c
    w = _u(rng, 0.04, 0.055)  # stock thickness (x)
    L = {"bolt": 1.1, "ar": 0.9, "ak": 0.88, "sniper": 1.2, "shotgun": 1.05, "bullpup": 0.75}[family] * \
        _u(rng, 0.92, 1.08)
    z_butt = -L / 2
    recv_len = L * _u(rng, 0.2, 0.28)
    z_recv = z_butt + (L * 0.3 if family != "bullpup" else L * 0.05)
    bore_y = 0.0
    barrel_r = _u(rng, 0.008, 0.012) if family != "shotgun" else _u(rng, 0.011, 0.014)
    # stock side profile (z, y)
    drop = _u(rng, 0.03, 0.08)
    butt_h = _u(rng, 0.1, 0.14)
    if family == "bullpup":
        stock = np.array([(z_butt, -butt_h + 0.02), (z_butt, 0.03), (z_butt + L * 0.55, 0.03),
                          (z_butt + L * 0.6, -0.035), (z_butt + L * 0.05, -butt_h * 0.6)])
        a.add(extrude_side(stock, -w / 2, w / 2), poly_c)
    elif family in ("ar",):
        a.add(box((0, -0.02, (z_butt + z_recv) / 2 + 0.01), (w * 0.9, 0.05, z_recv - z_butt + 0.02)), poly_c)
        a.add(extrude_side(np.array([(z_butt, -butt_h + 0.01), (z_butt, 0.01), (z_butt + 0.04, 0.01),
                                     (z_butt + 0.12, -0.03), (z_butt + 0.12, -0.07), (z_butt + 0.02, -butt_h + 0.01)]),
                           -w / 2, w / 2), poly_c)
    else:
        grip_z = z_recv - 0.02
        stock = np.array([(z_butt, -drop - butt_h), (z_butt, -drop + 0.01), (grip_z - 0.08, -0.015),
                          (z_recv + recv_len + (L * 0.25 if family != "ak" else L * 0.1), -0.012),
                          (z_recv + recv_len + (L * 0.25 if family != "ak" else L * 0.1), -0.045),
                          (z_recv + recv_len * 0.4, -0.05),
                          (grip_z, -0.09), (grip_z - 0.05, -0.1), (grip_z - 0.1, -0.06),
                          (z_butt + 0.1, -drop - butt_h * 0.8)])
        if family == "sniper" and rng.random() < 0.6:  # thumbhole / chassis stock: add a cheek riser
            a.add(box((0, -drop + 0.02, z_butt + 0.12), (w * 0.7, 0.03, 0.15)), furn)
        a.add(extrude_side(stock, -w / 2, w / 2), furn)
    if family == "ak":
        a.add(box((0, 0.012, z_recv + recv_len + 0.12), (w * 0.8, 0.025, 0.2)), furn)
    # receiver
    a.add(box((0, bore_y + 0.005, z_recv + recv_len / 2), (w * 0.75, 0.05, recv_len)), steel)
    # barrel to the muzzle
    z_muzzle = L / 2
    a.add(cyl((0, bore_y + 0.005, z_recv + recv_len - 0.01), (0, bore_y + 0.005, z_muzzle), barrel_r,
              barrel_r * 0.85, seg=10), steel)
    if family in ("ar", "bullpup"):  # handguard and pistol grip, magazine
        hz0 = z_recv + recv_len
        a.add(cyl((0, bore_y + 0.005, hz0 - 0.01), (0, bore_y + 0.005, hz0 + L * 0.25), 0.022, seg=10), poly_c)
        a.add(box((0, bore_y + 0.035, z_recv + recv_len / 2 + 0.05), (0.02, 0.012, recv_len + L * 0.2)), steel)
        if family == "ar" and rng.random() < 0.5:  # carry handle / front sight
            a.add(box((0, bore_y + 0.04, hz0 + L * 0.27), (0.012, 0.06, 0.015)), steel)
    if family in ("ar", "ak", "bullpup", "sniper") or (family == "bolt" and rng.random() < 0.3):
        mz = z_recv + recv_len * 0.6 if family != "bullpup" else z_butt + L * 0.12
        mag_len = _u(rng, 0.09, 0.15) if family in ("ar", "ak", "bullpup") else 0.06
        mag = box((0, bore_y - 0.015 - mag_len / 2, mz), (w * 0.6, mag_len, 0.06))
        if family == "ak":
            mag = rot_x(mag, -20, (0, bore_y - 0.015, mz))
        a.add(mag, steel if rng.random() < 0.6 else poly_c)
    if family in ("ar", "bullpup") or (family == "ak" and rng.random() < 0.5):
        gz = z_recv + recv_len * 0.15 if family != "bullpup" else z_butt + L * 0.55
        a.add(rot_x(box((0, bore_y - 0.06, gz), (w * 0.7, 0.09, 0.035)), -18, (0, bore_y - 0.02, gz)), poly_c)
    # trigger guard
    tz = z_recv + recv_len * 0.2 if family != "bullpup" else z_butt + L * 0.5
    a.add(box((0, bore_y - 0.055, tz + 0.03), (0.006, 0.006, 0.07)), steel)
    if family in ("bolt", "sniper"):
        a.add(cyl((0, bore_y + 0.01, z_recv + recv_len * 0.3), (0.045, bore_y - 0.005, z_recv + recv_len * 0.25),
                  0.005, seg=6), steel)
        a.add(sphere((0.045, bore_y - 0.005, z_recv + recv_len * 0.25), 0.01, 8), steel)
    if family == "sniper" or (family in ("bolt", "ar") and rng.random() < 0.5):
        sl = _u(rng, 0.25, 0.38)
        sr = _u(rng, 0.015, 0.022)
        sy = bore_y + 0.06
        sz = z_recv + recv_len / 2
        a.add(cyl((0, sy, sz - sl / 2), (0, sy, sz + sl / 2), sr, seg=12), pick(rng, "plastic_dark"))
        a.add(cyl((0, sy, sz + sl / 2 - 0.06), (0, sy, sz + sl / 2), sr * 1.5, sr * 1.7, seg=12),
              pick(rng, "plastic_dark"))
        a.add(cyl((0, sy, sz - sl / 2), (0, sy, sz - sl / 2 + 0.05), sr * 1.4, sr * 1.3, seg=12),
              pick(rng, "plastic_dark"))
        for dz in (-0.05, 0.05):
            a.add(box((0, (sy + bore_y) / 2 + 0.01, sz + dz), (0.015, sy - bore_y, 0.015)), steel)
    if family == "sniper" and rng.random() < 0.7:  # bipod, legs folded down
        bz = z_muzzle - L * 0.3
        for sx in (-1, 1):
            a.add(cyl((0, bore_y - 0.01, bz), (sx * 0.07, bore_y - 0.2, bz + 0.05), 0.006, seg=6), steel)
    if family == "shotgun":
        a.add(cyl((0, bore_y - 0.025, z_recv + recv_len), (0, bore_y - 0.025, z_muzzle - 0.03), barrel_r * 0.9,
                  seg=10), steel)
        a.add(cyl((0, bore_y - 0.025, z_recv + recv_len + 0.08), (0, bore_y - 0.025, z_recv + recv_len + 0.26),
                  0.02, seg=10), furn)
    if rng.random() < 0.5 and family != "bullpup":  # muzzle device
        a.add(cyl((0, bore_y + 0.005, z_muzzle - 0.05), (0, bore_y + 0.005, z_muzzle), barrel_r * 1.5, seg=10), steel)
    return a
