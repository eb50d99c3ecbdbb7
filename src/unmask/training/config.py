"""TrainConfig: everything one training run needs, as a dataclass a study fills from params.yaml.

Defaults follow seed 000 Section 4.3: TTUR Adam (G 1e-4, D 4e-4, betas (0.5, 0.9)), batch 4. Names
(``framework``, ``adv_loss``, ``recon``) are checked where they are looked up (the registries), so a
bad name is a ConfigError naming ``train.<key>`` and the valid choices.

Loss weights. The paper writes the generator loss as ``L_rec + lambda_adv * L_adv`` and, for
CycleGAN, calls the cycle-consistency term the reconstruction between ``F(G(x))`` and ``x`` (Section
3.3; StarGAN likewise names its cycle term L_rec, weight 10). Here that term is ``lambda_cycle``;
``lambda_rec`` weights the L1 of a generator's output to its own input when the input is already in
the target domain (CycleGAN's identity term: a clean face through the unmasker stays unchanged).
To reproduce the paper's loss exactly set ``lambda_rec = 0`` (Table 3's lambda_adv = 0.1 with cycle
weight 1 is the same optimum as lambda_cycle = 10, lambda_adv = 1). In the paired framework
``lambda_rec`` weights the L1 between the output and the true clean image.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from unmask.errors import ConfigError
from unmask.models import DiscriminatorConfig, GeneratorConfig


def _check(ok: bool, key: str, value: Any, need: str) -> None:
    if not ok:
        raise ConfigError(f"train.{key}: must be {need}, got {value!r}")


def _is_num(v: Any) -> bool:
    """A finite int or float (not a bool): .inf and .nan can never train."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class TrainConfig:
    """One training run. ``n_classes`` of the generator/discriminator configs is set by the
    framework (StarGAN 2, paired 1 mask channel, CycleGAN 0); ``discriminator.image_size`` must be
    the training image size."""

    framework: str = "cyclegan"          # "cyclegan" | "stargan" | "paired" (TRAINERS)
    adv_loss: str = "lsgan"              # ADV_LOSSES name
    lambda_adv: float = 1.0
    lambda_rec: float = 10.0             # identity L1 (CycleGAN/StarGAN) or L1 to the target (paired)
    lambda_cycle: float = 10.0           # the paper's L_rec: L1 between x and its round trip
    lambda_gp: float = 10.0              # only losses with uses_gradient_penalty
    lambda_cls: float = 1.0              # StarGAN with one discriminator: domain classification
    recon: str = "l1"                    # RECON_LOSSES name, for the rec/cycle/identity terms
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
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)

    def __post_init__(self) -> None:
        for key in ("lambda_adv", "lambda_rec", "lambda_cycle", "lambda_gp", "lambda_cls"):
            v = getattr(self, key)
            _check(_is_num(v) and v >= 0, key, v, "a finite number >= 0")
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
        _check(isinstance(self.generator, GeneratorConfig), "generator", self.generator, "a GeneratorConfig")
        _check(isinstance(self.discriminator, DiscriminatorConfig), "discriminator", self.discriminator,
               "a DiscriminatorConfig")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TrainConfig":
        """Build from plain data (params.yaml section, a tuner's trial dict, a checkpoint's
        ``config``); unknown keys raise ConfigError naming ``train.<key>``."""
        raw = dict(raw)
        nested = {"generator": GeneratorConfig, "discriminator": DiscriminatorConfig}
        for key, sub in nested.items():
            if key in raw and isinstance(raw[key], dict):
                raw[key] = _build(sub, raw[key], f"train.{key}")
        return _build(cls, raw, "train")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts, tuples, numbers, strings): what checkpoints store."""
        return dataclasses.asdict(self)


def _build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}: unknown key (valid: {', '.join(sorted(names))})")
    return cls(**raw)
