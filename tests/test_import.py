"""recon data import: AC3D reader, catalogues, mapping, frames, materials, safe archives, bad input.

Every fixture is generated here (no Debian package, no network).
"""

from __future__ import annotations

import csv
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from typer.testing import CliRunner

from recon_cli.cli.app import app
from recon_cli.data.importers.ac3d import read_ac3d
from recon_cli.data.importers.archive import extract_deb, extract_zip_files, safe_relpath
from recon_cli.data.importers.mapping import Mapping, load_mapping
from recon_cli.data.importers.run import import_dataset
from recon_cli.data.importers.sweethome3d import parse_properties
from recon_cli.data.render import RenderOptions, intrinsics, look_at, render_image
from recon_cli.data.surface import Part, assemble
from recon_cli.errors import ConfigError, DatasetError, InputError

FAST = {"render": RenderOptions(n_views=2, size=32), "n_points": 400}
CHAIR, CAR, AIRPLANE = "03001627", "02958343", "02691156"


def _png(rgb: tuple[int, int, int], size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), rgb).save(buf, format="PNG")
    return buf.getvalue()


def _obj_text(mesh: trimesh.Trimesh, mtl: str | None = None, material: str = "m") -> str:
    lines = [f"mtllib {mtl}"] if mtl else []
    lines += [f"v {x} {y} {z}" for x, y, z in mesh.vertices]
    lines += ["vt 0 0", "vt 1 0", "vt 1 1"]
    if mtl:
        lines.append(f"usemtl {material}")
    lines += [f"f {a + 1}/1 {b + 1}/2 {c + 1}/3" for a, b, c in mesh.faces]
    return "\n".join(lines) + "\n"


def _sh3d_chair() -> trimesh.Trimesh:
    """A chair in Sweet Home 3D's frame (y up, front +z): seat box, back-rest at -z."""
    seat = trimesh.creation.box((0.5, 0.1, 0.5), trimesh.transformations.translation_matrix((0, 0.45, 0)))
    back = trimesh.creation.box((0.5, 0.5, 0.06), trimesh.transformations.translation_matrix((0, 0.75, -0.22)))
    legs = [trimesh.creation.box((0.05, 0.4, 0.05), trimesh.transformations.translation_matrix((x, 0.2, z)))
            for x in (-0.2, 0.2) for z in (-0.2, 0.2)]
    return trimesh.util.concatenate([seat, back, *legs])


def _catalog(path: Path, entries: list[dict], files: dict[str, bytes | str]) -> Path:
    lines = ["id=Test", "name=Test catalogue", "license=CC0"]
    for i, e in enumerate(entries, 1):
        lines += [f"{k}#{i}={v}" for k, v in e.items()]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("PluginFurnitureCatalog.properties", "\n".join(lines) + "\n")
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _chair_catalog(tmp_path: Path) -> Path:
    chair = _sh3d_chair()
    flat = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.zeros((0, 3), int), process=False)
    files = {
        "m/chair/chair.obj": _obj_text(chair, "chair.mtl", "wood"),
        "m/chair/chair.mtl": "newmtl wood\nKd 1 1 1\nmap_Kd wood.png\n",
        "m/chair/wood.png": _png((200, 40, 40)),
        "m/chair2/chair2.obj": _obj_text(chair, "chair2.mtl", "cloth"),
        "m/chair2/chair2.mtl": "newmtl cloth\nKd 0.2 0.3 0.9\nmap_Kd missing.png\n",
        "m/empty/empty.obj": "v 0 0 0\nv 1 0 0\nv 0 1 0\n",
        "m/door/door.obj": _obj_text(trimesh.creation.box((1, 2, 0.1))),
    }
    del flat
    entries = [
        {"id": "Test#chair", "name": "Chair", "tags": "Seat", "category": "Living room", "model": "/m/chair/chair.obj",
         "width": 50, "depth": 50, "height": 100, "creator": "Alice"},
        {"id": "Test#chair2", "name": "Armchair", "tags": "Seat", "category": "Living room",
         "model": "/m/chair2/chair2.obj", "width": 50, "depth": 50, "height": 100, "creator": "Bob"},
        {"id": "Test#empty", "name": "Stool", "category": "Kitchen", "model": "/m/empty/empty.obj", "creator": "Eve"},
        {"id": "Test#door", "name": "Door", "category": "Doors and windows", "model": "/m/door/door.obj",
         "doorOrWindow": "true"},
        {"id": "Test#vase", "name": "Vase", "category": "Living room", "model": "/m/door/door.obj"},
    ]
    return _catalog(tmp_path / "BlendSwap-CC-0.sh3f", entries, files)


def _top_x(cloud: Path) -> float:
    pts = np.load(cloud)["points"].astype(float)
    top = pts[pts[:, 1] > np.quantile(pts[:, 1], 0.9)]
    return float(top[:, 0].mean())


def test_sweethome3d_catalogue_import_layout_frame_records_and_bad_input(tmp_path: Path) -> None:
    cat = _chair_catalog(tmp_path)
    (tmp_path / "corrupt.sh3f").write_bytes(b"PK\x03\x04 this is not a zip archive")
    root = tmp_path / "ds"
    report = import_dataset(["sweethome3d"], root, from_paths=[cat, tmp_path / "corrupt.sh3f"], **FAST)
    # the corrupt archive: one warning naming it; the import went on
    assert [w for w in report.warnings if "corrupt.sh3f" in w and "corrupt" in w]
    assert report.counts == {"sweethome3d": {"chair": 2}}
    for model in ("sh3d_blendswap-cc-0_chair", "sh3d_blendswap-cc-0_chair2"):
        d = root / CHAIR / model
        assert (d / "points.npz").is_file() and (d / "model.binvox").is_file()
        assert (d / "img_choy2016" / "001.jpg").is_file() and (d / "img_choy2016" / "cameras.npz").is_file()
        assert _top_x(d / "pointcloud.npz") < -0.2   # back-rest at -x (it was at -z in the catalogue)
    splits = [m for s in ("train", "val", "test") for m in (root / CHAIR / f"{s}.lst").read_text().split("\n") if m]
    assert sorted(splits) == ["sh3d_blendswap-cc-0_chair", "sh3d_blendswap-cc-0_chair2"]
    results = {r.model_id: r for r in report.build.results}
    # a missing texture: one warning naming the model, the model is still built
    assert any("chair2" in w and "missing texture 'missing.png'" in w for w in results["sh3d_blendswap-cc-0_chair2"].warnings)
    # a model with no faces: reported by name, left out, the others built
    assert not results["sh3d_blendswap-cc-0_empty"].ok and "no faces" in results["sh3d_blendswap-cc-0_empty"].error
    with open(root / "SOURCES.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["model"] for r in rows} == {"sh3d_blendswap-cc-0_chair", "sh3d_blendswap-cc-0_chair2"}
    row = next(r for r in rows if r["model"] == "sh3d_blendswap-cc-0_chair")
    assert row["author"].startswith("Alice") and row["licence"] == "CC0-1.0" and row["category"] == "chair"
    assert "m/chair/chair.obj" in row["file"]
    skipped = (root / "IMPORT_SKIPPED.csv").read_text()
    assert "door or window" in skipped and "no category rule matches" in skipped and "no faces" in skipped
    assert "Alice" in (root / "ATTRIBUTION.md").read_text()
    # the texture is used in the renders: the textured chair is red, the untextured one blue-ish
    red = np.asarray(Image.open(root / CHAIR / "sh3d_blendswap-cc-0_chair" / "img_choy2016" / "000.jpg"), float)
    obj = red.sum(-1) < 600
    assert red[obj][:, 0].mean() > red[obj][:, 2].mean() + 40
    # resume: nothing rebuilt; --licence filters; --limit per category
    again = import_dataset(["sweethome3d"], root, from_paths=[cat], **FAST)
    assert again.build.n_built == 0 and again.build.n_skipped == 2
    with pytest.raises(InputError, match="no models"):
        import_dataset(["sweethome3d"], tmp_path / "gpl", from_paths=[cat], licences=["gpl"], **FAST)
    one = import_dataset(["sweethome3d"], tmp_path / "one", from_paths=[cat], limit=1, **FAST)
    assert one.counts == {"sweethome3d": {"chair": 1}}


AC_TEXT = """AC3Db
MATERIAL "white" rgb 1 1 1  amb 0.2 0.2 0.2  emis 0 0 0  spec 0 0 0  shi 10  trans 0
MATERIAL "grey" rgb 0.5 0.5 0.5  amb 0.2 0.2 0.2  emis 0 0 0  spec 0 0 0  shi 10  trans 0
OBJECT world
kids 2
OBJECT poly
name "fuselage"
data 5
hello
texture "skin.png"
texrep 1 1
crease 30.0
sparkle 3
loc 0 0 0
numvert 4
-2 0 -0.5
1 0 -0.5
1 0 0.5
-2 0 0.5
numsurf 1
SURF 0x30
mat 0
refs 4
0 0 0
1 1 0
2 1 1
3 0 1
kids 1
OBJECT poly
name "nose"
loc -2 0 0
numvert 3
0 0 0
-1 0 0.1
0 0.5 0
numsurf 1
SURF 0x20
mat 1
refs 3
0 0 0
1 0 0
2 0 0
kids 0
OBJECT poly
name "Wake"
numvert 3
0 0 0
50 0 0
0 0 50
numsurf 1
SURF 0x20
mat 1
refs 3
0 0 0
1 0 0
2 0 0
kids 0
"""


def test_ac3d_reader_materials_kids_unknown_tags_and_missing_texture(tmp_path: Path) -> None:
    path = tmp_path / "plane.ac"
    path.write_text(AC_TEXT)
    mesh, warnings = read_ac3d(path)
    assert len(mesh.faces) == 3  # quad fan (2) + nose (1); the wake effect is left out
    assert np.isclose(mesh.vertices[:, 0].min(), -3.0)  # the kid is moved by its parent's and its own loc
    assert any("unknown AC3D tag 'sparkle'" in w for w in warnings)
    assert any("missing texture 'skin.png'" in w for w in warnings)
    (tmp_path / "skin.png").write_bytes(_png((10, 200, 10)))
    mesh, warnings = read_ac3d(path)
    mats = mesh.metadata["surface_materials"]
    assert len(mats.textures) == 1 and (mats.face_texture == 0).sum() == 2
    assert not any("missing" in w for w in warnings)
    colour = mats.sample(np.array([0]), np.array([[1 / 3, 1 / 3, 1 / 3]]))
    assert np.allclose(colour, [[10 / 255, 200 / 255, 10 / 255]], atol=0.02)
    (tmp_path / "strip.acc").write_text(
        "AC3Db\nOBJECT world\nkids 1\nOBJECT poly\nnumvert 4\n0 0 0\n1 0 0\n0 1 0\n1 1 0\n"
        "numsurf 1\nSURF 0x34\nmat 0\nrefs 4\n0 0 0\n1 0 0\n2 0 0\n3 0 0\nkids 0\n")
    strip, _ = read_ac3d(tmp_path / "strip.acc")
    assert len(strip.faces) == 2 and np.isclose(strip.area, 1.0)
    (tmp_path / "bad.ac").write_text("solid stl\n")
    with pytest.raises(InputError, match="not an AC3D file"):
        read_ac3d(tmp_path / "bad.ac")


def _flightgear_tree(root: Path, text: str) -> Path:
    folder = root / "usr/share/games/flightgear/AI/Aircraft/testjet/Models"
    folder.mkdir(parents=True)
    (folder / "testjet.ac").write_text(text)
    return root


def test_flightgear_import_turns_the_nose_to_plus_x_and_warns_about_unknown_tags(tmp_path: Path) -> None:
    tree = _flightgear_tree(tmp_path / "tree", AC_TEXT)
    root = tmp_path / "ds"
    report = import_dataset(["flightgear"], root, from_paths=[tree], **FAST)
    assert report.counts == {"flightgear": {"airplane": 1}}
    result = report.build.results[0]
    assert any(w.startswith("fg_testjet: ") and "sparkle" in w for w in result.warnings)
    pts = np.load(root / AIRPLANE / "fg_testjet" / "pointcloud.npz")["points"].astype(float)
    nose = pts[pts[:, 1] > 0.0]  # the nose triangle rises above the flat fuselage; FlightGear has it at -x
    assert nose[:, 0].min() > 0.2  # it sits beyond the fuselage, at +x


def test_render_samples_textures_through_uv() -> None:
    # a unit quad facing +x: left half of its texture red, right half blue
    tex = np.zeros((8, 8, 3), np.uint8)
    tex[:, :4] = (255, 0, 0)
    tex[:, 4:] = (0, 0, 255)
    verts = np.array([[0, -0.5, 0.5], [0, -0.5, -0.5], [0, 0.5, -0.5], [0, 0.5, 0.5]], float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)[faces]
    mesh = assemble([Part(verts, faces, (1, 1, 1), uv, 0)], [tex])
    image = render_image(mesh, intrinsics(64, RenderOptions().focal), look_at(90, 0, 1.6), size=64,
                         options=RenderOptions(antialias=False)).astype(int)
    row = image[32]
    left, right = row[16], row[48]  # camera on +x looking at -x: screen right is -z, u grows towards -z
    assert left[0] > 150 and left[2] < 60 and right[2] > 150 and right[0] < 60


def test_archive_members_never_leave_the_target(tmp_path: Path) -> None:
    for bad in ("../evil", "/etc/passwd", "a/../../evil", "C:/x", ""):
        assert safe_relpath(bad) is None
    assert str(safe_relpath("./usr/share/x")) == "usr/share/x"
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as zf:
        zf.writestr("../evil.txt", "x")
    with zipfile.ZipFile(tmp_path / "z.zip") as zf, pytest.raises(InputError, match="unsafe"):
        extract_zip_files(zf, ["../evil.txt"], tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    # a .deb with a path-traversal member, an absolute member and a link pointing out
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, payload in (("./usr/share/ok.txt", b"ok"), ("../../evil.txt", b"evil"), ("/abs.txt", b"abs")):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        link = tarfile.TarInfo("./usr/share/link.txt")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
        tar.addfile(link)
    control = io.BytesIO()
    with tarfile.open(fileobj=control, mode="w:xz") as tar:
        payload = b"Package: torcs-data\nVersion: 1.0\n"
        info = tarfile.TarInfo("./control")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    deb = tmp_path / "t.deb"
    with open(deb, "wb") as fh:
        fh.write(b"!<arch>\n")
        for name, blob in (("debian-binary", b"2.0\n"), ("control.tar.xz", control.getvalue()),
                           ("data.tar.xz", data.getvalue())):
            fh.write(f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(blob):<10}`\n".encode())
            fh.write(blob + (b"\n" if len(blob) % 2 else b""))
    out = tmp_path / "deb_out"
    assert extract_deb(deb, out, lambda n: True) == 1
    assert (out / "usr/share/ok.txt").read_text() == "ok"
    assert not (tmp_path / "evil.txt").exists() and not (out / "usr/share/link.txt").exists()
    (tmp_path / "broken.deb").write_bytes(b"!<arch>\nnonsense")
    with pytest.raises(InputError, match="corrupt"):
        extract_deb(tmp_path / "broken.deb", out, lambda n: True)


def test_mapping_table() -> None:
    sh3d = load_mapping("sweethome3d")
    assert sh3d.decide("x#1", name="Oak chair", tags="Seat", room="Living room").category == "chair"
    assert sh3d.decide("x#2", name="Corner sofa", tags="Couch, Seat").category == "sofa"
    assert sh3d.decide("x#3", name="Seat Leon", tags="Car", room="Vehicles").category == "car"
    assert sh3d.decide("x#4", name="Desk lamp", room="Lights").category == "lamp"
    assert sh3d.decide("x#5", name="Tablet", tags="iPad").category is None
    assert sh3d.decide("x#6", name="Xylophone").category is None
    assert sh3d.decide("x#7", name="Table tennis").reason.startswith("not a table")
    assert sh3d.decide("x#8", name="Door", room="Doors and windows").reason == "door or window"
    assert sh3d.decide("Scopia#ext_chair", name="Chair").category is None
    fg = load_mapping("flightgear")
    assert fg.decide("AI/Aircraft/777").category == "airplane"
    assert fg.decide("AI/Aircraft/balloon").category is None
    assert fg.decide("Models/Maritime/Civilian/Tanker").category == "vessel"
    assert fg.decide("Models/Maritime/Misc/RedBuoy").category is None
    assert load_mapping("torcs").decide("cars/p406").category == "car"
    phone = sh3d.decide("Blend Swap CC-0#iphone", name="Apple iPhone")
    assert phone.category == "telephone" and phone.turn == ("-x", "+y")
    with pytest.raises(ConfigError, match="unknown category"):
        Mapping("x", {"rules": [{"category": "teapot", "name": "pot"}]})
    with pytest.raises(ConfigError, match="bad axis"):
        Mapping("x", {"overrides": {"a": {"category": "chair", "up": "+q"}}})
    with pytest.raises(ConfigError, match="unknown rule field"):
        Mapping("x", {"rules": [{"category": "chair", "colour": "red"}]})


def test_turn_override_and_unused_override_warning(tmp_path: Path) -> None:
    cat = _chair_catalog(tmp_path)
    table = tmp_path / "mapping.yaml"
    table.write_text('sweethome3d:\n  overrides:\n    "Test#chair": {category: chair, up: "+x", front: "+y"}\n'
                     '    "Test#nothing": chair\n')
    report = import_dataset(["sweethome3d"], tmp_path / "ds", from_paths=[cat], mapping_path=table, **FAST)
    assert any("'Test#nothing' matches no model" in w for w in report.warnings)
    assert report.counts == {"sweethome3d": {"chair": 1}}
    pts = np.load(tmp_path / "ds" / CHAIR / "sh3d_blendswap-cc-0_chair" / "pointcloud.npz")["points"].astype(float)
    ext = pts.max(0) - pts.min(0)
    assert ext[1] < 0.7 and ext[0] > 0.9   # the chair (1 m high) now lies along x: its old +x is up


def test_java_properties() -> None:
    props = parse_properties("# c\n! c\na=1\nb : two words\nc=caf\\u00e9\nd=long \\\n   line\n")
    assert props == {"a": "1", "b": "two words", "c": "café", "d": "long line"}


def test_cli_import_warns_and_continues(tmp_path: Path) -> None:
    cat = _chair_catalog(tmp_path)
    result = CliRunner().invoke(app, ["data", "import", "sweethome3d", "--from", str(cat), "-o", str(tmp_path / "ds"),
                                      "--views", "1", "--points", "300", "--categories", "chair"])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("warning:")]
    assert any("sh3d_blendswap-cc-0_chair2" in ln and "missing texture" in ln for ln in lines)
    assert any("sh3d_blendswap-cc-0_empty" in ln and "no faces" in ln for ln in lines)
    assert "sweethome3d: chair 2" in result.output
    bad = CliRunner().invoke(app, ["data", "import", "blender", "-o", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "unknown source" in bad.output


def test_canonical_preview_draws_every_model_from_one_viewpoint(tmp_path: Path) -> None:
    from recon_cli.data.synth import contact_sheet

    root = tmp_path / "ds"
    (root / CHAIR).mkdir(parents=True)
    (root / "metadata.yaml").write_text(f"'{CHAIR}': {{id: '{CHAIR}', name: chair}}\n")
    rng = np.random.default_rng(0)
    for name, offset in (("front", 0.3), ("back", -0.3)):  # a small blob at +x (front) or at -x
        pts = rng.normal(0, 0.05, (3000, 3)) + [offset, 0, 0]
        (root / CHAIR / name).mkdir()
        np.savez(root / CHAIR / name / "pointcloud.npz", points=pts.astype(np.float16),
                 normals=np.tile([0, 1, 0], (3000, 1)).astype(np.float16))
    (root / CHAIR / "test.lst").write_text("front\nback")
    out = contact_sheet(root, tmp_path / "s.png", per_category=2, canonical=True)
    px = np.asarray(Image.open(out).convert("L"), float)
    tiles = [px[:, 110 + k * 137:110 + (k + 1) * 137] < 250 for k in range(2)]
    rows = [np.nonzero(t.any(axis=1))[0].mean() for t in tiles]
    assert all(t.sum() > 50 for t in tiles)
    assert rows[0] > rows[1] + 5   # the +x blob is nearer the camera (in front, above): lower in the image
    (tmp_path / "empty_ds").mkdir()
    with pytest.raises(DatasetError, match="pointcloud.npz"):
        contact_sheet(tmp_path / "empty_ds", tmp_path / "e.png", canonical=True)
