"""Typed configuration: the schema of ``params.yaml``.

Stages load ``params.yaml`` with :func:`load_params` and hand the typed sections to library code;
library code never reads ``params.yaml`` itself. Unknown keys and wrong types are errors whose one
line names the dotted key (``params.yaml: synthesize.kinds.surgicl: unknown key``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, StrictInt, ValidationError, field_validator,
                      model_validator)

from unmask.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- download
class SyntheticSource(_Section):
    n_identities: StrictInt = Field(60, ge=1)
    images_per_identity: StrictInt = Field(4, ge=1)
    size: StrictInt = Field(128, ge=32, le=1024)     # render size in px (square)
    glasses_prob: float = Field(0.15, ge=0, le=1)


class FolderSource(_Section):
    path: Optional[str] = None                  # a directory of photos
    identity_from_subfolders: bool = True       # sub-folder name = identity; else one identity per file


class UrlSource(_Section):
    url: Optional[str] = None                   # http(s):// or file:// archive (.zip, .tar, .tar.gz, .tgz)
    sha256: Optional[str] = None                # required for http(s)
    subdir: Optional[str] = None                # folder inside the archive holding the photos
    identity_from_subfolders: bool = True
    max_extract_gb: float = Field(20.0, gt=0, allow_inf_nan=False)  # cap on the unpacked size (GiB)


DataSourceName = Literal["synthetic", "folder", "url", "ffhq", "celeba", "celebamask_hq", "cmfd"]


class DataConfig(_Section):
    source: DataSourceName = "synthetic"
    cache_dir: str = "data/external"           # where url/named datasets are downloaded and extracted
    limit: Optional[StrictInt] = Field(None, ge=1)   # take at most this many images (None: all)
    synthetic: SyntheticSource = SyntheticSource()
    folder: FolderSource = FolderSource()
    url: UrlSource = UrlSource()
    dataset_root: Optional[str] = None          # named datasets: an already-downloaded copy (skips download)


# --------------------------------------------------------------------------- align
class AlignConfig(_Section):
    size: StrictInt = Field(64, ge=16, le=1024)      # output side in px
    min_eye_distance: float = Field(8.0, gt=0)  # px in the source image; smaller faces are rejected
    detector_upsample: StrictInt = Field(0, ge=0, le=3)  # 0 finds faces >= ~80 px; 1 smaller ones, 4x slower
    cnn_fallback: bool = True                   # where HOG finds no face, dlib's CNN detector (slower)
    pad_retry: float = Field(0.25, ge=0, le=1)  # then both again on the photo padded by this share (0: off)
    face_crop_fallback: bool = False            # photos are crops of one face: else take the crop as the face
    use_source_landmarks: bool = True           # use the source's landmarks when it has them


# --------------------------------------------------------------------------- synthesize
OcclusionKind = Literal["surgical", "cloth", "n95", "kn95", "template", "centre_hole", "freeform"]


class SynthesizeConfig(_Section):
    kinds: dict[OcclusionKind, float] = Field(
        default_factory=lambda: {"surgical": 0.3, "cloth": 0.25, "n95": 0.2, "kn95": 0.25})
    variants_per_image: StrictInt = Field(1, ge=1)   # occluded versions made of each aligned image
    every_image: list[OcclusionKind] = Field(default_factory=list)  # kinds added to every image, beside the mix
    templates: Optional[str] = None             # a MaskTheFace-format folder (masks.cfg + templates/)
    centre_hole_fraction: float = Field(0.3, gt=0, lt=1)  # seed 002: 30 % of the side, white

    @field_validator("kinds")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in v.values()):
            raise ValueError("weights must be >= 0")
        if sum(v.values()) <= 0:
            raise ValueError("at least one kind needs a positive weight")
        return v

    @model_validator(mode="after")
    def _template_folder(self) -> "SynthesizeConfig":
        if self.kinds.get("template", 0) > 0 and not self.templates:
            raise ValueError("kinds.template > 0 needs synthesize.templates (a MaskTheFace folder)")
        if "template" in self.every_image and not self.templates:
            raise ValueError("every_image: template needs synthesize.templates (a MaskTheFace folder)")
        if len(set(self.every_image)) != len(self.every_image):
            raise ValueError("every_image: a kind is listed twice")
        return self


# --------------------------------------------------------------------------- split
class SplitConfig(_Section):
    val: float = Field(0.1, gt=0, lt=1)        # share of identities (trials validate and test on
    test: float = Field(0.15, gt=0, lt=1)      # theirs: neither may be empty)
    clean_domain: float = Field(0.5, gt=0, lt=1)  # share of train identities given to the clean domain
    # the most photos one identity found by face-embedding clustering may hold (a folder named only by
    # file); above it the split is refused, as clustering has failed (a handful of photos only warns)
    max_identity_share: float = Field(0.05, gt=0, le=1)

    @model_validator(mode="after")
    def _room_for_train(self) -> "SplitConfig":
        if self.val + self.test >= 1:
            raise ValueError("val + test must leave identities for train (sum < 1)")
        return self


# sections parsed by unmask.studies (kept as Params' extra keys: the data stages never need them)
STUDY_SECTIONS = ("train", "sweep", "tracking", "reports", "studies", "across", "leaderboard")
# what a params.yaml file must have: without them a typo (`dta:`) or an empty file would silently run
# the defaults and replace data/ (a programmatic parse_params may leave them out)
REQUIRED_SECTIONS = ("data", "align", "synthesize", "split", "train", "studies")


class Params(_Section):
    model_config = ConfigDict(extra="allow", frozen=True)  # STUDY_SECTIONS, checked by unmask.studies
    seed: StrictInt = 0
    _source: str = PrivateAttr("params.yaml")   # the file it was read from, for errors found later

    @property
    def source(self) -> str:
        """The file these params were read from (what every later error names)."""
        return self._source
    data: DataConfig = DataConfig()
    align: AlignConfig = AlignConfig()
    synthesize: SynthesizeConfig = SynthesizeConfig()
    split: SplitConfig = SplitConfig()

    @model_validator(mode="before")
    @classmethod
    def _known_sections(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            check_sections(raw)
        return raw


def check_sections(raw: dict) -> None:
    """ConfigError (without the file name) for a top-level key that is no section, or a section left empty."""
    valid = sorted([*Params.model_fields, *STUDY_SECTIONS])
    for key, value in raw.items():
        if key not in valid:
            raise ConfigError(f"{key}: unknown section (valid: {', '.join(valid)})")
        if value is None and key != "seed":
            raise ConfigError(f"{key}: empty section (give its keys, or leave the section out)")


def _format_error(source: str, err: ValidationError) -> str:
    e = err.errors()[0]
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]).lstrip(".") or "<root>"
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    else:
        msg = e["msg"].removeprefix("Value error, ")
        if "input" in e and not isinstance(e["input"], (dict, list)):
            msg += f" (got {e['input']!r})"
    more = f" (+{len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    if not e["loc"]:      # a check across sections names its own keys
        return f"{source}: {msg}{more}"
    return f"{source}: {key}: {msg}{more}"


def parse_params(raw: dict, source: str = "params.yaml") -> Params:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(raw).__name__}")
    try:
        params = Params.model_validate(raw)
        params._source = source
        return params
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    except ValidationError as err:
        raise ConfigError(_format_error(source, err)) from None


MAX_YAML_VALUES = 100_000
"""The most values (mappings, lists and scalars, YAML aliases expanded) a params file may hold: the
shipped one has about 800; a few kilobytes of nested aliases (an "alias bomb") expand to billions."""


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values ``node`` stands for once every alias in it is expanded (linear time: each node
    is counted once, its size memoised; a recursive alias counts once)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1
    children = [c for kv in node.value for c in kv] if isinstance(node, yaml.MappingNode) else (
        node.value if isinstance(node, yaml.SequenceNode) else [])
    memo[id(node)] = 1 + sum(_expanded_size(c, memo) for c in children)
    return memo[id(node)]


def _bounded_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load(text)``, refusing (ConfigError naming the dotted key) a document that expands
    to more than :data:`MAX_YAML_VALUES` values, before anything is expanded."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        memo: dict[int, int] = {}
        size = _expanded_size(node, memo)
        if size > MAX_YAML_VALUES:
            keys = []    # down the mapping keys to where the expansion spreads
            while isinstance(node, yaml.MappingNode) and node.value:
                k, v = max(node.value, key=lambda kv: memo[id(kv[1])])
                if memo[id(v)] <= MAX_YAML_VALUES or not isinstance(k, yaml.ScalarNode):
                    break
                keys.append(str(k.value))
                node = v
            where = f"{'.'.join(keys)}: " if keys else ""
            raise ConfigError(f"{source}: {where}expands to {size} values with its YAML aliases, more than the "
                              f"{MAX_YAML_VALUES} a params file may hold")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: str | os.PathLike) -> Any:
    """A YAML file's document, bounded like a params file; ConfigError naming the file (and line)."""
    path = Path(path)
    try:
        return _bounded_yaml(path.read_text(), str(path))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML (nested too deeply)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML ({problem})") from None


def load_params(path: str | os.PathLike = "params.yaml") -> Params:
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections, got "
                          f"{'an empty file' if raw is None else type(raw).__name__}")
    try:
        check_sections(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    missing = [k for k in REQUIRED_SECTIONS if k not in raw]
    if missing:
        raise ConfigError(f"{path}: missing section{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                          f"(a params.yaml needs {', '.join(REQUIRED_SECTIONS)})")
    return parse_params(raw, str(path))
