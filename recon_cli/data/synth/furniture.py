"""Tables and cabinets (front towards +z, width along x)."""

from __future__ import annotations

import numpy as np

from recon_cli.data.synth.materials import pick, shade
from recon_cli.data.synth.parts import Assembly, box, cyl, rbox, ycyl
from recon_cli.data.synth.parts import uniform as _u

Colour = tuple[int, int, int]


#: Families of tables as drawn (repeats weight the common kinds); the first draw of the generator.
TABLE_DRAW: tuple[str, ...] = ("four_leg", "four_leg", "pedestal", "trestle", "coffee", "desk", "tripod")


def table(rng: np.random.Generator) -> Assembly:
    """Tables: four legs with apron, round pedestal, trestle, coffee table with shelf, desk with
    drawer pedestal, tripod round table."""
    family = str(rng.choice(TABLE_DRAW))
    a = Assembly()
    wood = pick(rng, "wood")
    top_c = wood if rng.random() < 0.6 else pick(rng, str(rng.choice(["painted", "glass", "plastic_light"])))
    leg_c = wood if rng.random() < 0.6 else pick(rng, str(rng.choice(["metal", "dark_metal", "chrome"])))
    h = _u(rng, 0.4, 0.5) if family == "coffee" else _u(rng, 0.68, 0.78)
    L = _u(rng, 0.8, 2.2)
    D = L * _u(rng, 0.4, 0.9)
    t = _u(rng, 0.02, 0.06)
    round_top = family in ("pedestal", "tripod") or (family == "four_leg" and rng.random() < 0.2)
    if round_top:
        L = D = _u(rng, 0.6, 1.3)
        a.add(ycyl((0, h - t, 0), L / 2, t, seg=40), top_c)
    else:
        a.add(rbox((0, h - t / 2, 0), (L, t, D), _u(rng, 0.0, 0.1)), top_c)
    lt = _u(rng, 0.03, 0.08)
    if family in ("four_leg", "coffee"):
        inset = _u(rng, 0.02, 0.12)
        round_leg = rng.random() < 0.4
        splay = _u(rng, 0.0, 0.06) if rng.random() < 0.3 else 0.0
        hx, hz = (L / 2 * 0.7, D / 2 * 0.7) if round_top else (L / 2 - inset, D / 2 - inset)
        for sx in (-1, 1):
            for sz in (-1, 1):
                top = (sx * hx, h - t + 0.005, sz * hz)
                bot = (sx * (hx + splay), 0, sz * (hz + splay))
                a.add(cyl(bot, top, lt / 2 * (0.7 if round_leg else 1.0), lt / 2, seg=12 if round_leg else 4)
                      .rotate((0, 0, 0)), leg_c)
        if rng.random() < 0.6:
            ah = _u(rng, 0.05, 0.12)
            a.add(box((0, h - t - ah / 2 + 0.003, 0), (2 * hx, ah, 2 * hz)), leg_c)
        if family == "coffee" or rng.random() < 0.25:
            ys = h * _u(rng, 0.12, 0.3)
            grow = 2 * splay * (1 - ys / (h - t)) + lt * 0.6
            a.add(box((0, ys, 0), (2 * hx + grow, 0.025, 2 * hz + grow)), top_c)
    elif family == "pedestal":
        a.add(ycyl((0, 0, 0), _u(rng, 0.05, 0.1), h - t + 0.01, seg=16), leg_c)
        if rng.random() < 0.5:
            a.add(ycyl((0, 0, 0), L * _u(rng, 0.2, 0.35), 0.04, L * 0.1, seg=32), leg_c)
        else:
            for k in range(4):
                a.add(box((0, 0.03, L * 0.18), (0.06, 0.06, L * 0.36)).rotate((0, 45 + 90 * k, 0)), leg_c)
    elif family == "tripod":
        for k in range(3):
            ang = 2 * np.pi * k / 3
            dv = np.array([np.sin(ang), 0, np.cos(ang)])
            a.add(cyl(dv * L * 0.45, dv * L * 0.15 + [0, h - t + 0.005, 0], 0.018, 0.025, seg=10), leg_c)
    elif family == "trestle":
        for sx in (-1, 1):
            x = sx * (L / 2 - _u(rng, 0.1, 0.25))
            a.add(box((x, (h - t) / 2 + 0.005, 0), (lt, h - t + 0.01, lt * 1.5)), leg_c)
            a.add(box((x, 0.03, 0), (lt * 1.3, 0.06, D * 0.85)), leg_c)
            a.add(box((x, h - t - 0.025, 0), (lt * 1.3, 0.06, D * 0.85)), leg_c)
        a.add(box((0, h * 0.35, 0), (2 * abs(x), 0.06, 0.04)), leg_c)
    else:  # desk: one side a drawer pedestal, the other a panel or legs
        side = float(rng.choice([-1, 1]))
        pw = _u(rng, 0.35, 0.45)
        px = side * (L / 2 - pw / 2)
        body = leg_c if rng.random() < 0.5 else top_c
        a.add(box((px, (h - t) / 2 + 0.005, 0), (pw, h - t + 0.01, D * 0.95)), body)
        n = int(rng.integers(2, 5))
        dh = (h - t - 0.06) / n
        for i in range(n):
            y = 0.05 + dh * (i + 0.5)
            a.add(box((px, y, D * 0.475), (pw - 0.04, dh - 0.015, 0.012)), shade(body, 1.1))
            a.add(box((px, y + dh * 0.2, D * 0.475 + 0.01), (pw * 0.3, 0.015, 0.015)), pick(rng, "chrome"))
        ox = -side * (L / 2 - 0.03)
        if rng.random() < 0.5:
            a.add(box((ox, (h - t) / 2 + 0.005, 0), (0.04, h - t + 0.01, D * 0.95)), body)
        else:
            for sz in (-1, 1):
                a.add(box((ox, (h - t) / 2 + 0.005, sz * (D / 2 - 0.04)), (lt, h - t + 0.01, lt)), body)
        a.add(box((0, h * 0.55, -D * 0.45), (L - 0.1, h * 0.5, 0.02)), body)
    return a


#: Families of cabinets as drawn (repeats weight the common kinds); the first draw of the generator.
CABINET_DRAW: tuple[str, ...] = ("wardrobe", "drawers", "sideboard", "nightstand", "filing", "shelves")


def cabinet(rng: np.random.Generator) -> Assembly:
    """Cabinets: wardrobe, chest of drawers, sideboard on legs, nightstand, metal filing cabinet,
    open bookcase-like shelf cabinet."""
    family = str(rng.choice(CABINET_DRAW))
    a = Assembly()
    body = pick(rng, "wood") if rng.random() < 0.6 else pick(rng, "painted")
    if family == "filing":
        body = pick(rng, str(rng.choice(["metal", "plastic_light", "dark_metal"])))
    front = shade(body, _u(rng, 1.08, 1.2) if rng.random() < 0.5 else _u(rng, 0.78, 0.9))  # visible seams
    handle_c = pick(rng, str(rng.choice(["chrome", "brass", "dark_metal"])))
    dims = {"wardrobe": ((0.8, 1.6), (1.7, 2.2), (0.5, 0.65)), "drawers": ((0.7, 1.3), (0.7, 1.3), (0.4, 0.55)),
            "sideboard": ((1.2, 2.0), (0.6, 0.9), (0.4, 0.5)), "nightstand": ((0.4, 0.6), (0.45, 0.7), (0.35, 0.45)),
            "filing": ((0.4, 0.5), (0.7, 1.35), (0.5, 0.65)), "shelves": ((0.6, 1.2), (0.8, 2.0), (0.3, 0.45))}[family]
    W, H, D = (_u(rng, *r) for r in dims)
    leg_h = _u(rng, 0.08, 0.25) if family == "sideboard" or (family == "nightstand" and rng.random() < 0.6) else \
        (_u(rng, 0.03, 0.08) if rng.random() < 0.5 and family != "filing" else 0.0)
    y0 = leg_h
    bh = H - leg_h
    carcass = box((0, y0 + bh / 2, 0), (W, bh, D))
    n_shelves = int(rng.integers(2, 6))
    if family == "shelves":  # open compartments cut into the carcass
        sh = (bh - 0.05) / n_shelves
        for i in range(n_shelves):
            y = y0 + 0.025 + sh * (i + 0.5)
            carcass = carcass - box((0, y + 0.01, 0.03), (W - 0.05, sh - 0.02, D))
    a.add(carcass, body)
    if leg_h > 0:
        legc = pick(rng, str(rng.choice(["dark_wood", "dark_metal", "wood"])))
        for sx in (-1, 1):
            for sz in (-1, 1):
                a.add(cyl((sx * (W / 2 - 0.05), 0, sz * (D / 2 - 0.05)),
                          (sx * (W / 2 - 0.05), y0 + 0.01, sz * (D / 2 - 0.05)), 0.015, 0.022, seg=8), legc)
    if rng.random() < 0.5 and family != "filing":
        a.add(box((0, H + 0.012, 0), (W + 0.03, 0.025, D + 0.03)), shade(body, 0.9))
    fz = D / 2
    margin = 0.025
    gap = 0.008

    def drawer_stack(x0: float, x1: float, ya: float, yb: float, n: int) -> None:
        dh = (yb - ya) / n
        for i in range(n):
            y = ya + dh * (i + 0.5)
            a.add(box(((x0 + x1) / 2, y, fz + 0.006), (x1 - x0 - gap, dh - gap, 0.014)), front)
            hw = min((x1 - x0) * 0.3, 0.2)
            a.add(box(((x0 + x1) / 2, y + (dh * 0.25 if family == "filing" else 0), fz + 0.02), (hw, 0.018, 0.018)),
                  handle_c)

    def doors(x0: float, x1: float, ya: float, yb: float, n: int) -> None:
        dw = (x1 - x0) / n
        for i in range(n):
            x = x0 + dw * (i + 0.5)
            a.add(box((x, (ya + yb) / 2, fz + 0.006), (dw - gap, yb - ya - gap, 0.014)), front)
            hx = x + (dw * 0.38 if i % 2 == 0 and n > 1 else -dw * 0.38) * (-1 if n > 1 else 1)
            a.add(box((hx, (ya + yb) / 2 + (yb - ya) * 0.05, fz + 0.02), (0.018, min(0.25, (yb - ya) * 0.3), 0.018)),
                  handle_c)

    x0, x1 = -W / 2 + margin, W / 2 - margin
    ya, yb = y0 + margin, H - margin
    if family == "wardrobe":
        n = int(rng.choice([2, 2, 3]))
        if rng.random() < 0.5:
            drawer_stack(x0, x1, ya, ya + 0.25, 1)
            doors(x0, x1, ya + 0.25, yb, n)
        else:
            doors(x0, x1, ya, yb, n)
    elif family in ("drawers", "filing"):
        n = int(rng.integers(2, 6)) if family == "drawers" else int(rng.integers(2, 5))
        if family == "drawers" and rng.random() < 0.4:
            drawer_stack(x0, 0, yb - (yb - ya) / n, yb, 1)
            drawer_stack(0, x1, yb - (yb - ya) / n, yb, 1)
            drawer_stack(x0, x1, ya, yb - (yb - ya) / n, n - 1)
        else:
            drawer_stack(x0, x1, ya, yb, n)
    elif family == "sideboard":
        n = int(rng.integers(2, 5))
        if rng.random() < 0.5:
            drawer_stack(x0, x1, yb - 0.15, yb, 1)
            doors(x0, x1, ya, yb - 0.15, n)
        else:
            doors(x0, x1, ya, yb, n)
    elif family == "nightstand":
        if rng.random() < 0.5:
            drawer_stack(x0, x1, ya, yb, int(rng.integers(1, 4)))
        else:
            drawer_stack(x0, x1, yb - (yb - ya) * 0.35, yb, 1)
            a.add(box((0, ya + 0.01, 0), (W - 0.01, 0.02, D - 0.01)), body)
    else:  # open shelves, optionally glass-door upper part
        if rng.random() < 0.4:
            drawer_stack(x0, x1, ya, ya + (bh - 0.05) / n_shelves, 1)
    return a
