"""TrainConfig: everything one training run needs, as a dataclass a study fills from params.yaml.

Defaults follow seed 000 Section 4.3: TTUR Adam (G 1e-4, D 4e-4, betas (0.5, 0.9)), batch 4.

A ``train:`` mapping holds three kinds of key, and the trainer ``framework`` names declares two of them
(pytorch-CycleGAN-and-pix2pix's model-owned options):

* the fields below, which every trainer shares (steps, learning rates, batch, device, ``image_size``:
  the one source of a model's size, which each network family that needs it gets from here);
* its **networks by role** (``Trainer.NETWORKS``): ``generator: {name: unet, depth: 5}`` is the role
  ``generator``, checked against the U-Net's own fields and against what the trainer needs of that role
  (:mod:`unmask.catalog.capabilities`); a trainer may declare any number of roles. Kept in
  :attr:`TrainConfig.networks` (role -> family config);
* its **own options** (``Trainer.OPTIONS``, a dataclass): CycleGAN's ``recon``, StarGAN's
  ``n_discriminators``, the paired trainer's ``pretrained_dir``. Kept in :attr:`TrainConfig.options`.

Every key is checked when the config is built: an unknown key, a role's family that cannot do what the
trainer needs, a loss term the trainer does not have, each is one ConfigError naming ``train.<key>``.

Loss weights are a mapping, ``weights: {term: weight}``, whose terms each trainer declares with their
defaults (``Trainer.WEIGHTS``): CycleGAN's ``cycle`` is the paper's L_rec (L1 between x and its round
trip, Section 3.3) and ``identity`` the L1 of a generator's output to an input already in its target
domain; the paired trainers' ``l1``, ``mse``, ``dssim`` ... compare the output with the true clean face.
A study that switches framework sets the whole ``weights`` mapping of that cell (a dotted
``weights.<term>`` only changes one term).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unmask.errors import ConfigError
from unmask.losses import ADV_LOSSES
from unmask.registry import Registry

if TYPE_CHECKING:
    from unmask.training.base import Trainer


def _check(ok: bool, key: str, value: Any, need: str) -> None:
    if not ok:
        raise ConfigError(f"train.{key}: must be {need}, got {value!r}")


def _is_num(v: Any) -> bool:
    """A finite int or float (not a bool): .inf and .nan can never train."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


MAX_STEPS = 10_000_000
"""The most steps a run may take: 700 times the paper's 14,360, weeks of training at any speed this
project reaches (a typo such as 1000000000 would otherwise run until killed)."""

MIN_IMAGE_SIZE = 16


@dataclass(frozen=True)
class Role:
    """A network a trainer declares: the registry its family is chosen from (``GENERATORS``,
    ``DISCRIMINATORS``, ...) and what the family must be able to do
    (:class:`~unmask.catalog.capabilities.Capability` values)."""

    registry: Registry
    needs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NoOptions:
    """The options of a trainer that has none of its own."""


def location_fields(options: Any) -> list[str]:
    """The option fields that hold a folder path (``field(metadata={"location": True})``): relative
    paths are read from the project root."""
    return [f.name for f in dataclasses.fields(options) if f.metadata.get("location")]


def _trainer(framework: Any) -> type["Trainer"]:
    from unmask.training.registry import trainer_class   # registered when unmask.training is imported
    return trainer_class(framework)


@dataclass
class TrainConfig:
    """One training run. ``networks`` (role -> family config) and ``options`` (the trainer's options
    dataclass) may be given as plain mappings; they are built and checked against the trainer
    ``framework`` names. The conditioning channels of the networks are set by the trainer (StarGAN
    2 domain labels, paired 1 mask channel, CycleGAN 0)."""

    framework: str = "cyclegan"          # a TRAINERS name
    adv_loss: str = "lsgan"              # ADV_LOSSES name
    weights: dict[str, float] = field(default_factory=dict)   # loss term -> weight (Trainer.WEIGHTS)
    n_critic: int | None = None          # D steps per G step; None -> the adversarial loss' default
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.5, 0.9)
    batch_size: int = 4
    steps: int = 1000
    val_every: int = 250                 # 0: no periodic validation (still once at the end)
    checkpoint_every: int = 500          # 0: only at the end (when fit has a checkpoint_dir)
    log_every: int = 50                  # callback with the running means of the train losses
    seed: int = 0
    image_size: int = 64                 # the side the model trains and runs at (its networks get it)
    device: str = "auto"                 # "auto" (cuda if present, else cpu), "cpu", "cuda", "cuda:N"
    amp: bool = True                     # autocast fp16 + GradScaler, only on cuda
    threads: int | None = None           # torch.set_num_threads when given
    channels_last: bool | None = None    # None: on cuda only (measured slower on CPU, see benchmark)
    networks: dict[str, Any] = field(default_factory=dict)   # role -> family config (Trainer.NETWORKS)
    options: Any = None                  # the trainer's OPTIONS dataclass (None: its defaults)

    def __post_init__(self) -> None:
        _check(isinstance(self.weights, dict), "weights", self.weights, "a mapping of loss term -> weight")
        for key, v in self.weights.items():
            _check(isinstance(key, str), "weights", key, "keyed by loss term names")
            _check(_is_num(v) and v >= 0, f"weights.{key}", v, "a finite number >= 0")
        self.weights = {k: float(v) for k, v in self.weights.items()}
        if self.adv_loss not in ADV_LOSSES:
            raise ConfigError(f"train.adv_loss: unknown {self.adv_loss!r}; choose one of "
                              f"{', '.join(sorted(ADV_LOSSES))}")
        for key in ("lr_g", "lr_d"):
            v = getattr(self, key)
            _check(_is_num(v) and v > 0, key, v, "a finite number > 0")
        b = self.betas
        _check(isinstance(b, (tuple, list)) and len(b) == 2 and all(_is_num(x) and 0 <= x < 1 for x in b),
               "betas", b, "two numbers in [0, 1)")
        self.betas = (float(b[0]), float(b[1]))
        for key, low in (("batch_size", 1), ("steps", 1), ("val_every", 0), ("checkpoint_every", 0),
                         ("log_every", 1), ("seed", 0), ("image_size", MIN_IMAGE_SIZE)):
            v = getattr(self, key)
            _check(_is_int(v) and v >= low, key, v, f"an integer >= {low}")
        _check(self.steps <= MAX_STEPS, "steps", self.steps, f"at most {MAX_STEPS} (the paper's scale is 14360)")
        _check(self.n_critic is None or (_is_int(self.n_critic) and self.n_critic >= 1),
               "n_critic", self.n_critic, "null or an integer >= 1")
        _check(self.threads is None or (_is_int(self.threads) and self.threads >= 1),
               "threads", self.threads, "null or an integer >= 1")
        d = self.device
        _check(isinstance(d, str) and (d in ("auto", "cpu", "cuda") or
                                       (d.startswith("cuda:") and d[5:].isdigit())),
               "device", d, '"auto", "cpu", "cuda" or "cuda:N"')
        _check(isinstance(self.amp, bool), "amp", self.amp, "true or false")
        _check(self.channels_last is None or isinstance(self.channels_last, bool),
               "channels_last", self.channels_last, "null, true or false")
        trainer = _trainer(self.framework)
        self.options = _build_options(trainer.OPTIONS, self.options)
        self.networks = self._build_networks(trainer)
        trainer.resolve_weights(self.weights)    # every term is one of the trainer's
        trainer.check_networks(self)             # every role's family can do what the trainer needs

    def _build_networks(self, trainer: type["Trainer"]) -> dict[str, Any]:
        _check(isinstance(self.networks, dict), "networks", self.networks, "a mapping of role -> network")
        unknown = sorted(set(self.networks) - set(trainer.NETWORKS))
        if unknown:
            raise ConfigError(f"train.{unknown[0]}: not a network of framework {self.framework!r} "
                              f"(its networks: {', '.join(trainer.NETWORKS) or 'none'})")
        return {role: _network(role, r.registry, self.networks.get(role), self.image_size)
                for role, r in trainer.NETWORKS.items()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TrainConfig":
        """Build from plain data (a params.yaml ``train:`` mapping, a tuner's trial dict, a checkpoint's
        ``config``): the shared fields, plus the networks by role and the options of the trainer
        ``framework`` names, all as keys of one mapping. Unknown keys raise ConfigError naming
        ``train.<key>`` and the valid keys."""
        if not isinstance(raw, dict):
            raise ConfigError(f"train: must be a mapping, got {raw!r}")
        raw = dict(raw)
        trainer = _trainer(raw.get("framework", cls.framework))
        shared, own, roles = train_keys(trainer)
        unknown = sorted(set(raw) - {*shared, *own, *roles}, key=str)
        if unknown:
            raise ConfigError(f"train.{unknown[0]}: unknown key for framework {trainer.framework!r} "
                              f"(valid: {', '.join(sorted({*shared, *own, *roles}))})")
        return cls(**{k: raw[k] for k in shared if k in raw},
                   networks={k: raw[k] for k in roles if k in raw},
                   options={k: raw[k] for k in own if k in raw})

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the form :meth:`from_dict` reads (one flat mapping): what checkpoints and
        the trial store keep."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in ("networks", "options")}
        out["weights"], out["betas"] = dict(self.weights), tuple(self.betas)
        out.update(dataclasses.asdict(self.options))
        for role, net in self.networks.items():
            plain = dataclasses.asdict(net) if dataclasses.is_dataclass(net) else {"name": net}
            plain.pop("image_size", None)    # train.image_size is its one source
            out[role] = plain
        return out


def train_keys(trainer: type["Trainer"]) -> tuple[list[str], list[str], list[str]]:
    """The keys of ``train:`` that ``trainer`` reads: (shared TrainConfig fields, its options, its roles)."""
    shared = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("networks", "options")]
    return shared, [f.name for f in dataclasses.fields(trainer.OPTIONS)], list(trainer.NETWORKS)


def _build_options(cls: type, raw: Any) -> Any:
    if isinstance(raw, cls):
        return raw
    if raw is None:
        raw = {}
    _check(isinstance(raw, dict), "options", raw, "a mapping")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names, key=str)
    if unknown:
        raise ConfigError(f"train.{unknown[0]}: unknown option (valid: {', '.join(sorted(names)) or 'none'})")
    return cls(**raw)


def _network(role: str, registry: Registry, raw: Any, image_size: int) -> Any:
    """The family config of ``role``, built from a mapping (or kept, when already one). A family whose
    config has ``image_size`` gets :attr:`TrainConfig.image_size`; another value written for the role
    is an error naming it."""
    key = f"train.{role}"
    name = (registry.default if raw is None else raw.get("name", registry.default) if isinstance(raw, dict)
            else getattr(raw, "name", raw))
    config_cls = registry.entry(name, f"{key}.name").config
    sized = config_cls is not None and "image_size" in {f.name for f in dataclasses.fields(config_cls)}
    if not sized:
        return registry.config(raw, key)
    written = raw.get("image_size") if isinstance(raw, dict) else getattr(raw, "image_size", None)
    if written is not None and written != image_size:
        raise ConfigError(f"{key}.image_size: is set by train.image_size ({image_size}), got {written!r}; "
                          f"write image_size instead")
    if raw is not None and not isinstance(raw, dict):
        return registry.config(raw, key)
    try:
        return registry.config({**(raw or {}), "image_size": image_size}, key)
    except ConfigError as err:   # the size does not suit the family (e.g. not divisible): name where it was set
        field, _, msg = str(err).partition(": ")
        if field == f"{key}.image_size":
            raise ConfigError(f"train.image_size: {msg}") from None
        raise
