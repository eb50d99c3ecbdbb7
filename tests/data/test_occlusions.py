"""Occluders: masks exact and where they belong, on a drawn face and on real photos."""

from __future__ import annotations

import functools
import typing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from unmask.config import OcclusionKind, SynthesizeConfig
from unmask.data.occlusions import OCCLUDERS, FreeForm, TemplateLibrary, TemplateMask, build_occluders
from unmask.data.occlusions.base import Canvas, composite
from unmask.data.occlusions.centre_hole import CentreHole
from unmask.data.occlusions.geometry import anchor_points, estimate_yaw
from unmask.errors import ConfigError, UnmaskError
from unmask.io.images import load_rgb

FACE_MASKS = ("surgical", "cloth", "n95", "kn95")
MOUTH, NOSE_TIP, EYES = slice(48, 68), slice(30, 36), slice(36, 48)


# ----------------------------------------------------------------------------- faces
def synthetic_landmarks(size: int = 96, turn: float = 0.0) -> np.ndarray:
    """68 iBUG points of a drawn frontal face; ``turn`` > 0 moves nose, mouth and eyes towards
    image right by ``turn`` face-heights times their depth, as when the head turns that way."""
    p = np.zeros((68, 2))
    phi = np.linspace(0, np.pi, 17)
    p[0:17] = np.stack([-0.40 * np.cos(phi), -0.02 + 0.42 * np.sin(phi)], 1)
    bx = np.linspace(-0.34, -0.08, 5)
    by = -0.24 - 0.04 * np.sin(np.linspace(0, np.pi, 5))
    p[17:22], p[22:27] = np.stack([bx, by], 1), np.stack([-bx[::-1], by], 1)
    p[27:31] = np.stack([np.zeros(4), np.linspace(-0.14, 0.08, 4)], 1)
    p[31:36] = np.stack([np.linspace(-0.08, 0.08, 5), 0.12 + 0.02 * np.sin(np.linspace(0, np.pi, 5))], 1)
    eye = np.array([[-0.08, 0], [-0.03, -0.03], [0.03, -0.03], [0.08, 0], [0.03, 0.03], [-0.03, 0.03]])
    p[36:42], p[42:48] = eye + [-0.2, -0.12], eye + [0.2, -0.12]
    th = np.concatenate([np.pi + np.arange(7) * np.pi / 6, np.arange(1, 6)[::-1] * np.pi / 6])
    p[48:60] = np.stack([0.14 * np.cos(th), 0.24 + 0.05 * np.sin(th)], 1)
    th = np.concatenate([np.pi + np.arange(5) * np.pi / 4, np.arange(1, 4)[::-1] * np.pi / 4])
    p[60:68] = np.stack([0.1 * np.cos(th), 0.24 + 0.02 * np.sin(th)], 1)
    depth = np.zeros(68)
    depth[17:27], depth[27:31], depth[31:36], depth[36:48], depth[48:68] = 0.4, 0.9, 0.8, 0.4, 0.7
    depth[30] = 1.0
    p[:, 0] += turn * depth
    return (p * size * 0.9 + [size / 2, size * 0.46]).astype(np.float32)


def synthetic_face(size: int = 96, turn: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A drawn face (skin, brows, eyes, nose, lips on a gradient) and its landmarks."""
    lm = synthetic_landmarks(size, turn)
    g = np.linspace(90, 160, size, dtype=np.float32)
    im = Image.fromarray(np.stack([g[:, None].repeat(size, 1)] * 2 + [np.full((size, size), 180, np.float32)],
                                  2).astype(np.uint8))
    d = ImageDraw.Draw(im)
    top = [(x, 2 * lm[27, 1] - y) for x, y in lm[16:0:-1]]  # mirror the jaw upwards for a forehead
    d.polygon([tuple(q) for q in lm[0:17]] + top, fill=(224, 172, 140))
    for s in (slice(17, 22), slice(22, 27)):
        d.line([tuple(q) for q in lm[s]], fill=(90, 60, 40), width=2)
    for s in (slice(36, 42), slice(42, 48)):
        d.polygon([tuple(q) for q in lm[s]], fill=(250, 250, 250))
        c = lm[s].mean(0)
        d.ellipse([c[0] - 2, c[1] - 2, c[0] + 2, c[1] + 2], fill=(50, 30, 20))
    d.line([tuple(q) for q in lm[27:31]] + [tuple(lm[33])], fill=(170, 120, 100), width=1)
    d.polygon([tuple(q) for q in lm[48:60]], fill=(190, 80, 90))
    return np.asarray(im).copy(), lm


@functools.lru_cache(maxsize=None)
def _detected(folder: str, n: int) -> tuple[tuple[str, np.ndarray, np.ndarray], ...]:
    from unmask.data.landmarks import detect_landmarks

    found = []
    for path in sorted(Path(folder).glob("*.png")):
        img = load_rgb(path)
        faces = detect_landmarks(img, upsample=1)
        if len(faces) == 1:  # skip photos without exactly one detected face
            found.append((path.name, img, faces[0]))
        if len(found) == n:
            break
    return tuple(found)


@pytest.fixture
def real_faces(real_faces_dir: Path) -> tuple[tuple[str, np.ndarray, np.ndarray], ...]:
    faces = _detected(str(real_faces_dir), 6)
    if not faces:
        pytest.skip(f"{real_faces_dir}: dlib found no single-face photo")
    return faces


def faces_under_test(real_faces) -> list[tuple[str, np.ndarray, np.ndarray]]:
    drawn = [(f"drawn turn={t}", *synthetic_face(96, t)) for t in (0.0, -0.15, 0.15)]
    return drawn + [(f"drawn 64px", *synthetic_face(64))] + list(real_faces)


# ----------------------------------------------------------------------------- checks
def covered(mask: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Whether the pixel under each point is masked."""
    h, w = mask.shape
    xy = np.clip(np.rint(pts).astype(int), 0, [w - 1, h - 1])
    return mask[xy[:, 1], xy[:, 0]]


def assert_exact(occ, clean: np.ndarray) -> None:
    """The mask is HxW bool, non-empty, and every changed pixel lies inside it."""
    assert occ.image.shape == clean.shape and occ.image.dtype == np.uint8
    assert occ.mask.shape == clean.shape[:2] and occ.mask.dtype == bool
    assert occ.mask.any()
    np.testing.assert_array_equal(occ.image[~occ.mask], clean[~occ.mask])
    assert occ.mask[(occ.image != clean).any(axis=2)].all()


# ----------------------------------------------------------------------------- registry
def test_registry_names_every_configurable_kind():
    assert set(OCCLUDERS) == set(typing.get_args(OcclusionKind))


def test_build_occluders_keeps_positive_weights_and_normalises(masktheface_dir):
    cfg = SynthesizeConfig(kinds={"surgical": 2, "cloth": 0, "template": 1, "centre_hole": 1},
                           templates=str(masktheface_dir), centre_hole_fraction=0.25)
    names, probs, occluders = build_occluders(cfg)
    assert names == ["surgical", "template", "centre_hole"]
    np.testing.assert_allclose(probs, [0.5, 0.25, 0.25])
    assert isinstance(occluders[1], TemplateMask) and occluders[2].fraction == 0.25


def test_template_kind_without_folder_is_a_config_error():
    with pytest.raises(ConfigError, match="synthesize.templates"):
        TemplateMask.from_config(SynthesizeConfig())


# ----------------------------------------------------------------------------- face masks
@pytest.mark.parametrize("kind", FACE_MASKS)
def test_face_mask_covers_mouth_and_nose_but_not_eyes(kind, real_faces):
    occluder = OCCLUDERS[kind]()
    for name, img, lm in faces_under_test(real_faces):
        for seed in range(2):
            occ = occluder(img, lm, np.random.default_rng(seed))
            assert_exact(occ, img)
            assert occ.kind == kind
            assert covered(occ.mask, lm[MOUTH]).all(), f"{kind} on {name}: mouth not covered"
            assert covered(occ.mask, lm[NOSE_TIP]).all(), f"{kind} on {name}: nose tip not covered"
            assert not covered(occ.mask, lm[EYES]).any(), f"{kind} on {name}: covers an eye"
            assert occ.mask[: int(lm[EYES, 1].min())].sum() < 0.02 * occ.mask.sum(), "mask reaches the brows"


@pytest.mark.parametrize("kind", FACE_MASKS + ("centre_hole", "freeform"))
def test_same_seed_same_occlusion_other_seed_differs(kind):
    img, lm = synthetic_face(64)
    occluder = OCCLUDERS[kind]()
    a, b = (occluder(img, lm, np.random.default_rng(7)) for _ in range(2))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.attrs == b.attrs and a.kind == b.kind
    if kind != "centre_hole":
        others = [occluder(img, lm, np.random.default_rng(s)).image for s in range(8, 11)]
        assert any(not np.array_equal(a.image, o) for o in others)


def test_composite_masks_coverage_from_one_half_and_blends_only_there():
    clean = np.full((1, 3, 3), 100, np.uint8)
    alpha = np.array([[0.49, 0.5, 1.0]], np.float32)
    out, mask = composite(clean, [(alpha, np.array([200.0, 200.0, 200.0]))])
    assert mask.tolist() == [[False, True, True]]
    assert out[0, :, 0].tolist() == [100, 150, 200]


# ----------------------------------------------------------------------------- centre hole
@pytest.mark.parametrize("h, w", [(64, 64), (128, 128), (100, 80)])
def test_centre_hole_is_a_centred_white_square_of_30_percent(h, w):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)  # never pure white
    occ = CentreHole.from_config(SynthesizeConfig())(img, None, rng)
    rows, cols = np.nonzero(occ.mask)
    hh, hw = round(0.3 * h), round(0.3 * w)
    assert (rows.min(), rows.max() + 1) == ((h - hh) // 2, (h - hh) // 2 + hh)
    assert (cols.min(), cols.max() + 1) == ((w - hw) // 2, (w - hw) // 2 + hw)
    assert occ.mask.sum() == hh * hw
    assert (occ.image[occ.mask] == 255).all()
    assert_exact(occ, img)


# ----------------------------------------------------------------------------- free-form
def test_sunglasses_cover_both_eyes(real_faces):
    occluder = FreeForm("sunglasses")
    for name, img, lm in faces_under_test(real_faces):
        for seed in range(2):
            occ = occluder(img, lm, np.random.default_rng(seed))
            assert_exact(occ, img)
            assert occ.kind == "freeform:sunglasses"
            assert covered(occ.mask, lm[EYES]).all(), f"sunglasses on {name}: an eye shows"
            assert not covered(occ.mask, lm[MOUTH]).any()


def test_scarf_covers_mouth_and_hand_covers_part_of_face(real_faces):
    for name, img, lm in faces_under_test(real_faces):
        scarf = FreeForm("scarf")(img, lm, np.random.default_rng(1))
        assert_exact(scarf, img)
        assert covered(scarf.mask, lm[MOUTH]).all(), f"scarf on {name}: mouth shows"
        hand = FreeForm("hand")(img, lm, np.random.default_rng(1))
        assert_exact(hand, img)
        assert 0.03 < hand.mask.mean() < 0.6
        face_box = hand.mask[int(lm[:, 1].min()):int(lm[:, 1].max()), int(lm[:, 0].min()):int(lm[:, 0].max())]
        assert face_box.sum() > 0.5 * hand.mask.sum(), f"hand on {name} is mostly off the face"


def test_brush_strokes_and_random_styles_are_exact():
    img, lm = synthetic_face(96)
    seen = set()
    for seed in range(12):
        occ = FreeForm()(img, lm, np.random.default_rng(seed))
        assert_exact(occ, img)
        seen.add(occ.kind)
    assert seen == {"freeform:sunglasses", "freeform:hand", "freeform:scarf", "freeform:strokes"}


def test_unknown_freeform_style_is_rejected():
    with pytest.raises(ValueError, match="umbrella"):
        FreeForm("umbrella")


# ----------------------------------------------------------------------------- templates
def test_yaw_sign_follows_the_nose():
    assert abs(estimate_yaw(synthetic_landmarks(96, 0.0))) < 1
    assert estimate_yaw(synthetic_landmarks(96, 0.15)) > 13
    assert estimate_yaw(synthetic_landmarks(96, -0.15)) < -13


def test_shared_masktheface_folder_parses(masktheface_dir):
    lib = TemplateLibrary(masktheface_dir)
    assert {"surgical", "surgical_blue", "surgical_green", "N95", "KN95", "cloth", "gas"} <= set(lib.names)
    assert "empty" not in lib.templates and "inpaint" not in lib.templates
    assert set(lib.groups["KN95"]) == {"front", "left", "right"}
    assert all(t.path.parent == masktheface_dir / "templates" for t in lib.templates.values())
    assert lib.textures and all(p.parent.parent == masktheface_dir / "textures" for p in lib.textures)


@pytest.mark.parametrize("turn, suffix", [(0.0, ""), (0.15, "_right"), (-0.15, "_left")])
def test_template_view_follows_head_turn(masktheface_dir, turn, suffix):
    img, lm = synthetic_face(96, turn)
    occluder = TemplateMask(TemplateLibrary(masktheface_dir))
    for seed in range(3):
        occ = occluder(img, lm, np.random.default_rng(seed))
        assert_exact(occ, img)
        base = occ.kind.removeprefix("template:")
        assert occ.attrs["template"] == base + suffix


def test_template_masks_cover_mouth_and_nose(masktheface_dir, real_faces):
    occluder = TemplateMask(TemplateLibrary(masktheface_dir), p_texture=0.4, p_recolour=0.4)
    kinds = set()
    for i, (name, img, lm) in enumerate(faces_under_test(real_faces)):
        for seed in range(3):
            occ = occluder(img, lm, np.random.default_rng([i, seed]))
            assert_exact(occ, img)
            kinds.add(occ.kind)
            assert covered(occ.mask, lm[MOUTH]).all(), f"{occ.attrs} on {name}: mouth shows"
            assert covered(occ.mask, lm[[30, 33]]).all(), f"{occ.attrs} on {name}: nose tip shows"
    assert len(kinds) > 2


def _write_template_folder(root: Path, cfg: str, image: Image.Image | None = None) -> Path:
    (root / "templates").mkdir(parents=True)
    (root / "masks.cfg").write_text(cfg)
    if image is not None:
        image.save(root / "templates" / "box.png")
    return root


BOX_CFG = """[box]
template: masks/templates/box.png
mask_a: 0, 0
mask_b: 50, 0
mask_c: 99, 0
mask_d: 0, 59
mask_e: 50, 59
mask_f: 99, 59
"""


def test_template_anchors_land_on_face_anchors(tmp_path):
    """A template whose opaque hexagon a-b-c-f-e-d is a scaled copy of the face's anchor hexagon is
    warped exactly onto that hexagon."""
    img, lm = synthetic_face(96)
    dst = anchor_points(lm)
    src = (dst - dst.min(0)) * 2.5 + 7
    box = Image.new("RGBA", (260, 200), (0, 0, 0, 0))
    ImageDraw.Draw(box).polygon([tuple(src[i]) for i in (0, 1, 2, 5, 4, 3)], fill=(10, 200, 30, 255))
    cfg = "[hexagon]\ntemplate: masks/templates/box.png\n" + "".join(
        f"mask_{k}: {x:.3f}, {y:.3f}\n" for k, (x, y) in zip("abcdef", src))
    lib = TemplateLibrary(_write_template_folder(tmp_path / "t", cfg, box))
    occ = TemplateMask(lib, p_texture=0, p_recolour=0)(img, lm, np.random.default_rng(0))
    assert occ.kind == "template:hexagon"
    assert_exact(occ, img)
    expected = Canvas(96, 96).polygon(dst[[0, 1, 2, 5, 4, 3]]).alpha() >= 0.5
    iou = (occ.mask & expected).sum() / (occ.mask | expected).sum()
    assert iou > 0.95
    assert (np.abs(occ.image[occ.mask & expected].astype(int) - (10, 200, 30)) <= 2).mean() > 0.8


@pytest.mark.parametrize("case, needle", [
    ("no_folder", "t"),
    ("no_cfg", "masks.cfg"),
    ("bad_ini", "masks.cfg"),
    ("missing_template", "box.png"),
    ("no_alpha", "box.png"),
    ("missing_anchor", "mask_c"),
    ("malformed_anchor", "mask_e"),
])
def test_bad_template_folder_is_a_one_line_error_naming_the_file(tmp_path, case, needle):
    root = tmp_path / "t"
    rgba = Image.new("RGBA", (100, 60), (255, 255, 255, 255))
    if case == "no_cfg":
        (root / "templates").mkdir(parents=True)
    elif case == "bad_ini":
        _write_template_folder(root, "template: x.png\n[", rgba)
    elif case == "missing_template":
        _write_template_folder(root, BOX_CFG)
    elif case == "no_alpha":
        _write_template_folder(root, BOX_CFG, Image.new("RGB", (100, 60)))
    elif case == "missing_anchor":
        _write_template_folder(root, BOX_CFG.replace("mask_c: 99, 0\n", ""), rgba)
    elif case == "malformed_anchor":
        _write_template_folder(root, BOX_CFG.replace("mask_e: 50, 59", "mask_e: 50; 59"), rgba)
    with pytest.raises(UnmaskError) as err:
        TemplateLibrary(root)
    msg = str(err.value)
    assert "\n" not in msg and needle in msg and str(root) in msg
