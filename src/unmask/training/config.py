"""TrainConfig: everything one training run needs, as a dataclass a study fills from params.yaml.

Defaults follow seed 000 Section 4.3: TTUR Adam (G 1e-4, D 4e-4, betas (0.5, 0.9)), batch 4. Names
(``framework``, ``adv_loss``, ``recon``) are checked where they are looked up (the registries), so a
bad name is a ConfigError naming ``train.<key>`` and the valid choices.

``generator`` and ``discriminator`` are the configs of registered network families
(:mod:`unmask.models.registry`): ``{name: unet, depth: 5, ...}`` is checked against the U-Net's own
fields, ``{name: stargan, blocks: dmfb}`` (the default family) against seed 000's generator.

Loss weights are a mapping, ``weights: {term: weight}``, whose terms each trainer declares with their
defaults (``Trainer.WEIGHTS``): CycleGAN's ``cycle`` is the paper's L_rec (L1 between x and its round
trip, Section 3.3) and ``identity`` the L1 of a generator's output to an input already in its target
domain; the paired trainers' ``l1``, ``mse``, ``dssim`` ... compare the output with the true clean face.
An unknown term is an error naming ``train.weights.<term>`` and the trainer's terms. A study that
switches framework sets the whole ``weights`` mapping of that cell (a dotted ``weights.<term>`` only
changes one term).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from unmask.errors import ConfigError
from unmask.models import DISCRIMINATORS, GENERATORS, DiscriminatorConfig, GeneratorConfig


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


@dataclass
class TrainConfig:
    """One training run. The conditioning channels of the networks are set by the trainer (StarGAN
    2 domain labels, paired 1 mask channel, CycleGAN 0); ``discriminator.image_size`` must be the
    training image size."""

    framework: str = "cyclegan"          # a TRAINERS name
    adv_loss: str = "lsgan"              # ADV_LOSSES name
    weights: dict[str, float] = field(default_factory=dict)   # loss term -> weight (Trainer.WEIGHTS)
    recon: str = "l1"                    # RECON_LOSSES name, for CycleGAN/StarGAN's cycle/identity terms
    n_critic: int | None = None          # D steps per G step; None -> the adversarial loss' default
    n_discriminators: int = 1            # StarGAN: 1 (unified, with Dcls) or 2 (one per domain)
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.5, 0.9)
    batch_size: int = 4
    steps: int = 1000
    val_every: int = 250                 # 0: no periodic validation (still once at the end)
    checkpoint_every: int = 500          # 0: only at the end (when fit has a checkpoint_dir)
    log_every: int = 50                  # callback with the running means of the train losses
    seed: int = 0
    device: str = "auto"                 # "auto" (cuda if present, else cpu), "cpu", "cuda", "cuda:N"
    amp: bool = True                     # autocast fp16 + GradScaler, only on cuda
    threads: int | None = None           # torch.set_num_threads when given
    channels_last: bool | None = None    # None: on cuda only (measured slower on CPU, see benchmark)
    pretrained_dir: str | None = None    # folder with pretrained weights (vgg19-dcbb9e9d.pth); None: torch hub cache
    generator: Any = field(default_factory=GeneratorConfig)          # a GENERATORS family's config
    discriminator: Any = field(default_factory=DiscriminatorConfig)  # a DISCRIMINATORS family's config

    def __post_init__(self) -> None:
        _check(isinstance(self.weights, dict), "weights", self.weights, "a mapping of loss term -> weight")
        for key, v in self.weights.items():
            _check(isinstance(key, str), "weights", key, "keyed by loss term names")
            _check(_is_num(v) and v >= 0, f"weights.{key}", v, "a finite number >= 0")
        self.weights = {k: float(v) for k, v in self.weights.items()}
        _check(self.pretrained_dir is None or isinstance(self.pretrained_dir, str), "pretrained_dir",
               self.pretrained_dir, "null or a folder path")
        for key in ("lr_g", "lr_d"):
            v = getattr(self, key)
            _check(_is_num(v) and v > 0, key, v, "a finite number > 0")
        b = self.betas
        _check(isinstance(b, (tuple, list)) and len(b) == 2 and all(_is_num(x) and 0 <= x < 1 for x in b),
               "betas", b, "two numbers in [0, 1)")
        self.betas = (float(b[0]), float(b[1]))
        for key, low in (("batch_size", 1), ("steps", 1), ("val_every", 0), ("checkpoint_every", 0),
                         ("log_every", 1), ("seed", 0)):
            v = getattr(self, key)
            _check(_is_int(v) and v >= low, key, v, f"an integer >= {low}")
        _check(self.steps <= MAX_STEPS, "steps", self.steps, f"at most {MAX_STEPS} (the paper's scale is 14360)")
        _check(self.n_critic is None or (_is_int(self.n_critic) and self.n_critic >= 1),
               "n_critic", self.n_critic, "null or an integer >= 1")
        _check(self.n_discriminators in (1, 2) and _is_int(self.n_discriminators),
               "n_discriminators", self.n_discriminators, "1 or 2")
        _check(self.threads is None or (_is_int(self.threads) and self.threads >= 1),
               "threads", self.threads, "null or an integer >= 1")
        d = self.device
        _check(isinstance(d, str) and (d in ("auto", "cpu", "cuda") or
                                       (d.startswith("cuda:") and d[5:].isdigit())),
               "device", d, '"auto", "cpu", "cuda" or "cuda:N"')
        _check(isinstance(self.amp, bool), "amp", self.amp, "true or false")
        _check(self.channels_last is None or isinstance(self.channels_last, bool),
               "channels_last", self.channels_last, "null, true or false")
        self.generator = GENERATORS.config(self.generator, "train.generator")
        self.discriminator = DISCRIMINATORS.config(self.discriminator, "train.discriminator")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TrainConfig":
        """Build from plain data (params.yaml section, a tuner's trial dict, a checkpoint's
        ``config``); unknown keys raise ConfigError naming ``train.<key>``."""
        return _build(cls, dict(raw), "train")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts, tuples, numbers, strings): what checkpoints store."""
        return dataclasses.asdict(self)


def _build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}: unknown key (valid: {', '.join(sorted(names))})")
    return cls(**raw)
