"""``unmask edit``: seed 003's applications (Gu et al.'s mask-guided portrait editing) on one face.

A face is a test face by index (``test:N``, the N-th face of the test split in the order every
measurement uses, with the test data's own label map) or any photo (the largest face in it, found and
aligned at the editor's size exactly as ``unmask infer`` does, its label map predicted by the face parser,
by default ``seed003_parser``'s champion). The editor is a portrait trainer's model, by default
``seed003_variants``'s champion. One operation per run:

* ``--swap-mask OTHER`` (mask-to-face, Fig. 4.7): this face's appearance (every component) generated on
  ``OTHER``'s map, with ``OTHER``'s background: a new face, written whole;
* ``--component eyes|mouth|skin|hair --from OTHER`` (one component's style, Fig. 4.11): that component's
  appearance from ``OTHER`` on this face's map;
* ``--edit-map MAP.png`` (component editing, Figs. 4.8-4.10): this face generated on the map a user
  painted (``--save-map`` writes a face's map to start from; label values 0-10 as grey levels, or the
  colours of :data:`unmask.data.components.PALETTE`);
* none: the self-reconstruction (what the editor makes of the face unchanged).

A component swap and a map edit change only the region edited: the generated face is blended into the
aligned face inside that region (the target's labels of the component, or the pixels whose label the
edit changed), grown by :data:`GROW_PX` and feathered inside the growth; **every pixel farther than
``GROW_PX`` from the region is the input's, bit for bit**. ``--whole`` writes the generated face as it is
(the thesis's figures). Outputs are PNGs written atomically, never over an input (``--out`` equal to the
face, the other face or the map is refused).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from unmask.data.components import GROUPS, N_LABELS, PALETTE, colour_map
from unmask.data.sources import display_name
from unmask.errors import UnmaskError
from unmask.infer import Unmasker, blend_weights, load_unmasker, write_png

TEST_PREFIX = "test:"
GROW_PX = 2            # the edited region grows by this many pixels (at the editor's size) before blending
FEATHER_PX = 1.0
DEFAULT_EDITOR = "seed003_variants:champion"
DEFAULT_PARSER = "seed003_parser:champion"
OPERATIONS = ("self", "swap-mask", "component", "edit-map")


@dataclass(frozen=True)
class Face:
    """An aligned face at the editor's size and its label map."""

    name: str                 # what messages call it (the photo's path or ``test:N``)
    image: np.ndarray         # (S, S, 3) uint8
    labels: np.ndarray        # (S, S) int64, 0..10
    map_from: str             # where the labels came from
    path: Path | None         # the input file (never written over); None for a test face


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].float() / 127.5 - 1


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()


def split_face(spec: str, size: int, root: str | os.PathLike) -> Face:
    """``test:N``: the N-th face (from 0) of ``ROOT/data/splits/test`` in the measurements' order."""
    from unmask.data.torch_datasets import test_set

    index = spec[len(TEST_PREFIX):]
    if not index.isdigit():
        raise UnmaskError(f"{spec}: a test face is test:N with N a whole number from 0")
    split = Path(root) / "data" / "splits" / "test"
    if not split.is_dir():
        raise UnmaskError(f"{split}: missing; run `dvc repro` (the split stage) first, or give a photo")
    ds = test_set(split, None, size, ("clean", "parsing"))
    n = int(index)
    if n >= len(ds):
        raise UnmaskError(f"{spec}: the test split holds {len(ds)} faces (test:0 to test:{len(ds) - 1})")
    item = ds[n]
    return Face(spec, _to_uint8(item["clean"][None]), item["parsing"].numpy().astype(np.int64),
                "the test data's map", None)


def photo_face(path: str | os.PathLike, size: int, parser: Unmasker | None, face_crop: bool = False) -> Face:
    """The largest face of the photo at ``path``, aligned at ``size`` as ``unmask infer`` aligns it, and
    its label map by ``parser``."""
    from unmask.data.align import align_image, ffhq_quad
    from unmask.infer import find_faces
    from unmask.io.images import load_rgb

    path = Path(path)
    photo = load_rgb(path)
    faces = find_faces(photo, face_crop)
    if not faces:
        raise UnmaskError(f"{display_name(str(path))}: no face found"
                          + ("" if face_crop else " (if the photo is a crop of one face, add --face-crop)"))
    lm = max(faces, key=lambda f: float(np.hypot(*(ffhq_quad(f)[3] - ffhq_quad(f)[0]))))
    image = align_image(photo, lm, size).image
    if parser is None:
        raise UnmaskError(f"{display_name(str(path))}: a photo needs a face parser for its map (--parser)")
    x = _to_tensor(image)
    if parser.size != size:
        x = torch.nn.functional.interpolate(x, size=(parser.size,) * 2, mode="bilinear", antialias=True,
                                            align_corners=False)
    labels = parser.trainer.predict(x)
    if parser.size != size:
        labels = torch.nn.functional.interpolate(labels[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
    return Face(str(path), image, labels[0].numpy().astype(np.int64), f"parsed by {parser.name}", path)


def load_face(spec: str, size: int, root: str | os.PathLike, parser: Unmasker | None,
              face_crop: bool = False) -> Face:
    if spec.startswith(TEST_PREFIX) and not Path(spec).exists():
        return split_face(spec, size, root)
    return photo_face(spec, size, parser, face_crop)


def labels_from_rgb(rgb: np.ndarray, name: str) -> np.ndarray:
    """A painted map (H, W, 3) uint8 -> labels: grey levels 0-10, or :data:`PALETTE` colours; any other
    value is one UnmaskError naming ``name``, the first such pixel and how many there are."""
    grey = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])
    palette = PALETTE.numpy().astype(np.uint8)
    labels = np.full(rgb.shape[:2], -1, np.int64)
    as_grey = grey & (rgb[..., 0] < N_LABELS)
    labels[as_grey] = rgb[..., 0][as_grey]
    for label, colour in enumerate(palette):
        if label == 0:
            continue            # black is grey level 0 already
        labels[(rgb == colour).all(axis=2)] = label
    bad = labels < 0
    if bad.any():
        y, x = map(int, np.argwhere(bad)[0])
        raise UnmaskError(f"{name}: {int(bad.sum())} pixels hold no parsing label (first at x={x}, y={y}: "
                          f"RGB {tuple(int(v) for v in rgb[y, x])}); a map holds grey levels 0-{N_LABELS - 1} "
                          f"or the label colours that --save-map writes")
    return labels


def read_edit_map(path: str | os.PathLike, size: int) -> np.ndarray:
    """The label map a user painted, checked: ``size`` x ``size`` px and known labels only."""
    from unmask.io.images import load_rgb

    name = display_name(str(path))
    rgb = load_rgb(path, min_side=1)
    if rgb.shape[:2] != (size, size):
        raise UnmaskError(f"--edit-map {name}: the map is {rgb.shape[1]}x{rgb.shape[0]} px, the face "
                          f"{size}x{size} (the editor's size; --save-map writes a map of that size)")
    return labels_from_rgb(rgb, f"--edit-map {name}")


def map_image(labels: np.ndarray) -> np.ndarray:
    """A label map as its :data:`PALETTE` colours (uint8), what ``--save-map`` writes and edit reads."""
    return _to_uint8(colour_map(torch.from_numpy(labels)[None]))


def region_of(labels: np.ndarray, group: str) -> np.ndarray:
    """The pixels of ``labels`` (S, S) that a component group covers (bool)."""
    from unmask.data.components import BY_NAME

    out = np.zeros(labels.shape, bool)
    for name in GROUPS[group]:
        out |= np.isin(labels, list(BY_NAME[name].labels))
    return out


def blend(face: np.ndarray, generated: np.ndarray, region: np.ndarray, grow_px: int = GROW_PX,
          feather_px: float = FEATHER_PX) -> np.ndarray:
    """``generated`` inside ``region`` grown by ``grow_px`` (feathered inside the growth), ``face``
    elsewhere, bit for bit."""
    w = blend_weights(region, grow_px, feather_px)[..., None]
    out = face.copy()
    sel = w[..., 0] > 0
    mixed = w[sel] * generated[sel].astype(np.float32) + (1 - w[sel]) * face[sel].astype(np.float32)
    out[sel] = np.clip(np.round(mixed), 0, 255).astype(np.uint8)
    return out


@dataclass
class Edit:
    output: np.ndarray                       # the edited face (S, S, 3) uint8
    panels: list[tuple[str, np.ndarray]]     # what --side-by-side shows, left to right
    region: np.ndarray | None                # the region blended (None: the face written whole)


def edit_face(editor: Unmasker, face: Face, *, swap_mask: Face | None = None, component: str | None = None,
              source: Face | None = None, edit_map: np.ndarray | None = None, whole: bool = False) -> Edit:
    """One of the operations (at most one of ``swap_mask``, ``component`` + ``source``, ``edit_map``)."""
    from unmask.data.components import COMPONENTS

    composer = editor.trainer
    x, lab = _to_tensor(face.image), torch.from_numpy(face.labels)[None]
    panels = [(face.name, face.image), ("its map", map_image(face.labels))]
    region = None
    if swap_mask is not None:
        ox, olab = _to_tensor(swap_mask.image), torch.from_numpy(swap_mask.labels)[None]
        out = composer.compose(ox, olab, {c.name: (x, lab) for c in COMPONENTS})
        panels += [(swap_mask.name, swap_mask.image), ("its map", map_image(swap_mask.labels))]
        return Edit(_to_uint8(out), panels + [("output", _to_uint8(out))], None)
    if component is not None:
        if component not in GROUPS:
            raise UnmaskError(f"--component {component}: choose one of {', '.join(GROUPS)}")
        if source is None:
            raise UnmaskError(f"--component {component}: needs --from OTHER (the face whose {component} to take)")
        sx, slab = _to_tensor(source.image), torch.from_numpy(source.labels)[None]
        out = composer.compose(x, lab, {name: (sx, slab) for name in GROUPS[component]})
        region = region_of(face.labels, component)
        panels += [(source.name, source.image)]
    elif edit_map is not None:
        new = torch.from_numpy(edit_map)[None]
        out = composer.compose(x, new)
        region = edit_map != face.labels
        panels += [("edited map", map_image(edit_map))]
    else:
        out = composer.compose(x, lab)
    generated = _to_uint8(out)
    result = generated if whole or region is None else blend(face.image, generated, region)
    return Edit(result, panels + [("output", result)], None if whole else region)


def check_output(out: Path, inputs: list[Path]) -> None:
    """Refuse an output that is (or would replace) an input file, or a folder."""
    if out.is_dir():
        raise UnmaskError(f"--out {display_name(str(out))}: a folder; give the PNG file to write")
    if out.suffix.lower() != ".png":
        raise UnmaskError(f"--out {display_name(str(out))}: edit writes PNG; give a name ending in .png")
    for p in inputs:
        same = out.resolve() == p.resolve()
        if not same and out.exists():
            try:
                same = os.path.samefile(out, p)
            except OSError:
                same = False
        if same:
            raise UnmaskError(f"--out {display_name(str(out))}: that is the input {display_name(str(p))}; "
                              f"choose another name (an input is never written over)")


def side_by_side(panels: list[tuple[str, np.ndarray]]) -> np.ndarray:
    gap = np.full((panels[0][1].shape[0], 2, 3), 255, np.uint8)
    row = []
    for _, img in panels:
        row += [img, gap]
    return np.concatenate(row[:-1], axis=1)


def run_edit(face_spec: str, out: str | os.PathLike, root: str | os.PathLike = ".", *, model: str | None = None,
             parser: str | None = None, swap_mask: str | None = None, component: str | None = None,
             source: str | None = None, edit_map: str | None = None, save_map: str | None = None,
             side: bool = False, whole: bool = False, face_crop: bool = False) -> list[str]:
    """The ``unmask edit`` command: returns the lines to print (what was written, from what)."""
    chosen = [n for n, v in (("--swap-mask", swap_mask), ("--component", component), ("--edit-map", edit_map)) if v]
    if len(chosen) > 1:
        raise UnmaskError(f"{' and '.join(chosen)}: one operation per run")
    if source is not None and component is None:
        raise UnmaskError(f"--from {source}: goes with --component (eyes, mouth, skin or hair)")
    if component is not None and component not in GROUPS:
        raise UnmaskError(f"--component {component}: choose one of {', '.join(GROUPS)}")
    if component is not None and source is None:
        raise UnmaskError(f"--component {component}: needs --from OTHER (a test face test:N or a photo)")
    out = Path(out)
    inputs = [Path(s) for s in (face_spec, swap_mask, source, edit_map) if s and Path(s).exists()]
    check_output(out, inputs)
    if save_map:
        check_output(Path(save_map), inputs + [out])
    editor = load_unmasker(model or DEFAULT_EDITOR, root, role="model", needs="portrait")
    photos = [s for s in (face_spec, swap_mask, source) if s and not (s.startswith(TEST_PREFIX) and not Path(s).exists())]
    scorer = load_unmasker(parser or DEFAULT_PARSER, root, role="parser", needs="parsing") if photos else None
    size = editor.size
    face = load_face(face_spec, size, root, scorer, face_crop)
    other = load_face(swap_mask, size, root, scorer, face_crop) if swap_mask else None
    src = load_face(source, size, root, scorer, face_crop) if source else None
    painted = read_edit_map(edit_map, size) if edit_map else None
    result = edit_face(editor, face, swap_mask=other, component=component, source=src, edit_map=painted,
                       whole=whole)
    write_png(out, side_by_side(result.panels) if side else result.output)
    lines = [f"unmask edit: editor {editor.name} ({size} px); {face.name}: {face.map_from}"]
    if save_map:
        write_png(Path(save_map), map_image(face.labels))
        lines.append(f"unmask edit: {face.name}'s map written to {save_map}")
    what = ("whole" if whole or result.region is None else
            f"blended inside the edited region grown by {GROW_PX} px; the rest is the input's")
    lines.append(f"unmask edit: wrote {out} ({what})")
    return lines
