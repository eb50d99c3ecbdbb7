"""The training loop every framework shares: devices, optimisers, one-forward steps, fit, checkpoints.

A trainer declares what the rest of the project asks it (never its name):

* ``pairing``: ``"paired"`` (batches of one face) or ``"unpaired"`` (two domains of different faces);
* ``FIELDS``: the fields its training batches hold (:data:`unmask.data.torch_datasets.FIELDS`:
  ``occluded``, ``clean``, ``mask``, ``parsing``, ``landmarks``); the datasets yield exactly those;
* ``model_input``: what the trained model takes, ``"image"`` or ``"image+mask"`` (the exported model's
  input is then (B, 4, H, W), the mask as fourth channel);
* ``WEIGHTS``: its loss terms and their default weights (``TrainConfig.weights`` overrides them);
* ``NETWORKS``: its networks by role (:class:`~unmask.training.config.Role`: the registry a role's
  family comes from and what that family must be able to do, :mod:`unmask.catalog.capabilities`),
  checked when params are read; ``train.<role>`` configures each;
* ``OPTIONS``: the dataclass of its own options (``train.<option>``), beside the shared TrainConfig fields;
* its optimiser groups as data (:meth:`Trainer.phases`): which networks (a group, or roles), which
  learning rate, every how many steps, from which step and until which. The base builds one fused Adam
  per phase and runs the phases due at a step in order.

A step computes the generators' outputs once. On a generator step (every ``n_critic``-th step, as in
StarGAN's code) the discriminators see those outputs once, not detached: the generator loss is
backpropagated into the generators' weights only, the discriminator loss into the discriminators'
weights only (``backward(inputs=...)``), then both optimisers step. That is the CycleGAN order
(G update, then D update on the same fakes) without its second discriminator pass over the fakes.
On a discriminator-only step the fakes are made without a graph.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from tqdm import tqdm

from unmask.catalog.capabilities import WHAT, Capability
from unmask.errors import ConfigError
from unmask.losses import build_adv_loss, gradient_penalty
from unmask.metrics import aggregate
from unmask.metrics.suite import MetricSuite
from unmask.training.checkpoint import CheckpointError, load_state, save_state
from unmask.training.config import NoOptions, Role, TrainConfig
from unmask.training.seeding import rng_state, seed_everything, set_rng_state

MODEL_INPUTS = ("image", "image+mask", "image+parsing")   # what a trained model takes (the map as a 4th channel)
OUTPUTS = ("image", "mask", "parsing", "portrait")          # what it gives: the baselines beside it are of that kind
Batch = dict[str, Tensor]
Callback = Callable[[int, dict[str, float]], None]
CHECKPOINT_NAME = "last.pt"


@dataclass
class Critique:
    """One discriminator's verdict on real and fake images (fake logits carry the generator graph
    on generator steps)."""

    d_adv: Tensor                  # adversarial D loss
    d_loss: Tensor                 # d_adv, plus weights["gp"] * gp when the loss uses a penalty
    g_loss: Tensor | None          # adversarial G loss (generator steps only)
    gp: Tensor | None              # gradient penalty (unweighted)
    real_cls: Tensor | None
    fake_cls: Tensor | None


@dataclass
class StepLosses:
    """What a framework's ``losses`` returns: per phase the total it minimises (only the phases that
    update this step), and the terms to log."""

    totals: dict[str, Tensor]
    logs: dict[str, Tensor]


@dataclass(frozen=True)
class Phase:
    """One optimiser group: the networks it trains, by Adam at ``lr`` on every ``interval``-th step
    while the step (0-based) is in ``[start, stop)`` (``stop`` None: to the end), so an autoencoder
    pre-training phase is ``Phase("ae", ("AE",), lr, stop=N)`` and the phases after it ``start=N``.
    ``modules`` is a group (``"generators"``, ``"discriminators"``) or a tuple of network roles of
    either group. Phases run in the order declared; the generator phase first, so the
    discriminators judge the same fakes in the step they are made (see above)."""

    name: str
    modules: str | tuple[str, ...]
    lr: float
    interval: int = 1
    start: int = 0
    stop: int | None = None
    at: int | None = None      # due when (step - start) % interval == at; None: interval - 1

    def due(self, step: int) -> bool:
        """Whether this phase updates in step ``step`` (0-based: the step about to be taken): inside
        ``[start, stop)`` and on the ``at``-th step of every ``interval`` counted from ``start`` (by
        default the last, so ``interval`` 5 from step 0 updates at steps 4, 9, ...; two phases with
        ``interval`` 2 and ``at`` 0 and 1 alternate)."""
        at = self.interval - 1 if self.at is None else self.at
        return (self.start <= step and (self.stop is None or step < self.stop)
                and (step - self.start) % self.interval == at)


def resolve_weights(cls: type["Trainer"], overrides: dict[str, float]) -> dict[str, float]:
    """The trainer's declared weights with ``overrides`` applied; an undeclared term is a ConfigError
    naming ``train.weights.<term>`` and the trainer's terms."""
    unknown = sorted(set(overrides) - set(cls.WEIGHTS))
    if unknown:
        raise ConfigError(f"train.weights.{unknown[0]}: not a loss term of framework {cls.framework!r} "
                          f"(its terms: {', '.join(sorted(cls.WEIGHTS))})")
    return {**cls.WEIGHTS, **overrides}


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


SHARED_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))


class Trainer:
    """Base class; subclasses build their networks and define ``losses`` and ``_translate``.

    Attributes: ``cfg``, ``w`` (loss weights), ``device``, ``step`` (optimisation steps done),
    ``generators`` and ``discriminators`` (ModuleDicts), ``optimizers`` (phase name -> Adam).
    """

    framework: ClassVar[str] = ""
    pairing: ClassVar[str] = "unpaired"          # "paired" | "unpaired"
    FIELDS: ClassVar[tuple[str, ...]] = ("occluded", "clean", "mask")   # what its training batches hold
    model_input: ClassVar[str] = "image"         # one of MODEL_INPUTS
    WEIGHTS: ClassVar[dict[str, float]] = {}     # loss term -> default weight
    output: ClassVar[str] = "image"              # one of OUTPUTS: what translate gives ("mask": a segmenter)
    REQUIRED_METRICS: ClassVar[tuple[str, ...]] = (   # test metrics that must be finite (else: diverged)
        "l1", "l2", "psnr", "ssim", "l1_masked", "l2_masked", "psnr_masked")
    SELECT_BY: ClassVar[str] = "val_psnr"        # the champion's metric (its direction: unmask.catalog.metrics; never a test one)

    NETWORKS: ClassVar[dict[str, Role]] = {}     # role -> the registry its family comes from, what it must do
    OPTIONS: ClassVar[type] = NoOptions          # the dataclass of this trainer's own options

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = [f.name for f in dataclasses.fields(cls.OPTIONS)]
        clash = sorted((SHARED_FIELDS & {*own, *cls.NETWORKS}) | (set(own) & set(cls.NETWORKS)))
        if clash:
            raise TypeError(f"{cls.__name__}: {clash[0]!r} is a shared TrainConfig field, a role and an "
                            "option at once; a key of train: must mean one thing")

    @classmethod
    def resolve_weights(cls, overrides: dict[str, float]) -> dict[str, float]:
        """:func:`resolve_weights` of this trainer."""
        return resolve_weights(cls, overrides)

    @classmethod
    def needs(cls, cfg: TrainConfig) -> dict[str, frozenset[str]]:
        """What the family of each role must be able to do (default: as :attr:`NETWORKS` declares)."""
        return {role: r.needs for role, r in cls.NETWORKS.items()}

    @classmethod
    def deployable(cls, cfg: TrainConfig) -> bool:
        """Whether the model ``cfg`` trains runs on a photo from what ``model_input`` names alone (a model
        that reads what only a test set has, such as the true label map, does not)."""
        return True

    @classmethod
    def check_networks(cls, cfg: TrainConfig) -> None:
        """ConfigError naming ``train.<role>.name`` when a role's family cannot do what this trainer
        needs of it (:mod:`unmask.catalog.capabilities`); checked when a TrainConfig is built."""
        for role, need in cls.needs(cfg).items():
            registry, net = cls.NETWORKS[role].registry, cfg.networks[role]
            missing = [c for c in sorted(need) if c not in registry.capabilities(net)]
            if missing:
                able = [n for n in registry.names()
                        if need <= registry.capabilities(registry.config({"name": n}, role))]
                article = "an" if role[:1].lower() in "aeiou" else "a"
                raise ConfigError(f"train.{role}.name: the {cls.framework} trainer needs {article} {role} that "
                                  f"{' and '.join(WHAT[Capability(c)] for c in missing)}; {net.name!r} does not"
                                  + (f" (choose {' or '.join(able)})" if able else ""))

    @classmethod
    def requirements(cls, cfg: TrainConfig) -> list[str]:
        """Why ``cfg`` cannot train here (e.g. pretrained weights it needs are missing); empty when it can."""
        return []

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.w = resolve_weights(type(self), cfg.weights)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.amp = cfg.amp and self.device.type == "cuda"
        channels_last = cfg.channels_last if cfg.channels_last is not None else self.device.type == "cuda"
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.adv = build_adv_loss(cfg.adv_loss, key="train.adv_loss")
        self.n_critic = cfg.n_critic or self.adv.default_n_critic
        seed_everything(cfg.seed)
        gens, discs = self.build_networks()
        self.generators = nn.ModuleDict(gens).to(self.device, memory_format=self.memory_format)
        self.discriminators = nn.ModuleDict(discs).to(self.device, memory_format=self.memory_format)
        self._params = {p.name: self._phase_parameters(p) for p in self.phases()}
        self.optimizers = {name: self._adam(params, lr)
                           for (name, params), lr in zip(self._params.items(), (p.lr for p in self.phases()))}
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.step = 0

    # ------------------------------------------------------------------ subclass hooks
    def build_networks(self) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        """(generators, discriminators) by role name."""
        raise NotImplementedError

    def phases(self) -> list[Phase]:
        """The optimiser groups: the generators at ``lr_g`` every ``n_critic``-th step, then the
        discriminators (when there are any) at ``lr_d`` every step."""
        if not self.discriminators_declared():
            return [Phase("g", "generators", self.cfg.lr_g, 1)]
        return [Phase("g", "generators", self.cfg.lr_g, self.n_critic),
                Phase("d", "discriminators", self.cfg.lr_d, 1)]

    def _phase_parameters(self, phase: Phase) -> list[nn.Parameter]:
        if isinstance(phase.modules, str):
            return list(getattr(self, phase.modules).parameters())
        roles = {**self.generators, **self.discriminators}
        unknown = [r for r in phase.modules if r not in roles]
        if unknown:
            raise TypeError(f"phase {phase.name!r} names network {unknown[0]!r}; the networks: {', '.join(roles)}")
        return [p for r in phase.modules for p in roles[r].parameters()]

    def discriminators_declared(self) -> bool:
        """Whether this trainer has discriminators (built by :meth:`build_networks`)."""
        return len(self.discriminators) > 0

    def losses(self, batch: Batch, update: frozenset[str]) -> StepLosses:
        """The losses of one step: ``totals`` for every phase name in ``update``."""
        raise NotImplementedError

    def _translate(self, occluded: Tensor, mask: Tensor | None) -> Tensor:
        """occluded -> clean (on device, inside no_grad/eval/autocast)."""
        raise NotImplementedError

    @classmethod
    def inputs(cls, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """What :meth:`translate` takes of a test batch (its sample figures and exported model too):
        the occluded face and, for a model whose ``model_input`` is ``image+mask``, the mask."""
        return batch["occluded"], batch.get("mask") if cls.model_input != "image" else None

    # ------------------------------------------------------------------ helpers for subclasses
    def _adam(self, params: list[nn.Parameter], lr: float) -> torch.optim.Adam:
        # fused: on CPU too, 17 ms per step for the two paper-width generators vs 47 foreach, 105 default
        return torch.optim.Adam(params, lr=lr, betas=self.cfg.betas, fused=True)

    def critique(self, d: nn.Module, real: Tensor, fake: Tensor, update_g: bool, domains: int = 1) -> Critique:
        """Run ``d`` once on ``real`` and once on ``fake``; adversarial losses (+ gradient penalty).

        With ``domains`` > 1 the batches hold that many equal chunks, chunk i of ``fake`` posing as
        chunk i of ``real`` (a unified discriminator over several domains); every term is the sum
        over the chunks, so its scale matches one discriminator per domain.
        """
        real_src, real_cls = d(real)
        fake_src, fake_cls = d(fake)
        pairs = list(zip(real_src.chunk(domains), fake_src.chunk(domains)))
        d_adv = sum(self.adv.d_loss(r, f) for r, f in pairs)
        d_loss, gp = d_adv, None
        if self.adv.uses_gradient_penalty:
            with torch.autocast(self.device.type, enabled=False):   # double backward in fp32
                gp = domains * gradient_penalty(lambda x: d(x)[0].float(), real.float(), fake.float())
            d_loss = d_adv + self.w["gp"] * gp
        g_loss = sum(self.adv.g_loss(r, f) for r, f in pairs) if update_g else None
        return Critique(d_adv, d_loss, g_loss, gp, real_cls, fake_cls)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.float16)
        return contextlib.nullcontext()

    def _to_device(self, batch: Batch) -> Batch:
        out = {}
        for k, v in batch.items():
            v = v.to(self.device, non_blocking=True)
            out[k] = v.contiguous(memory_format=self.memory_format) if v.dim() == 4 else v
        return out

    # ------------------------------------------------------------------ training
    def train_step(self, batch: Batch) -> dict[str, float]:
        """One update of every phase due at this step (by its interval); returns the loss terms of
        this step as floats. Each phase's total is backpropagated into its own networks only."""
        due = [p.name for p in self.phases() if p.due(self.step)]
        if not due:          # between phases (none declared for this step): nothing to update
            self.step += 1
            return {}
        with self._autocast():
            out = self.losses(self._to_device(batch), frozenset(due))
        for name in due:
            self.optimizers[name].zero_grad(set_to_none=True)
        for i, name in enumerate(due):
            self.scaler.scale(out.totals[name]).backward(inputs=self._params[name],
                                                         retain_graph=i < len(due) - 1)
        for name in due:
            self.scaler.step(self.optimizers[name])
        self.scaler.update()
        self.step += 1
        logs = dict(out.logs)
        for name in due:
            logs[f"{name}_total"] = out.totals[name]
        values = torch.stack([v.detach().float().reshape(()) for v in logs.values()]).tolist()  # one sync
        return dict(zip(logs, values))

    def fit(self, train_batches: Iterable[Batch], val_batches: Callable[[], Iterable[Batch]] | None = None,
            callback: Callback | None = None, checkpoint_dir: str | os.PathLike | None = None,
            metrics: MetricSuite | None = None) -> dict[str, float]:
        """Train until ``cfg.steps`` (or until ``train_batches`` runs out), from ``self.step``.

        ``train_batches`` yields one batch per step; after :meth:`load_checkpoint` it should resume at
        batch ``self.step`` for an exact continuation. ``callback(step, metrics)`` gets the running
        means of the train terms every ``log_every`` steps and the ``val_``-prefixed validation
        means (:meth:`evaluate` on ``val_batches()``) every ``val_every`` steps and at the end.
        With ``checkpoint_dir``, ``<checkpoint_dir>/last.pt`` is written every ``checkpoint_every``
        steps and at the end. Returns ``{"step", last train means..., last val means...}``.
        """
        cfg = self.cfg
        ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        train_means: dict[str, float] = {}
        val_means: dict[str, float] = {}
        val_step = saved_step = -1
        batches: Iterator[Batch] = iter(train_batches)

        def flush() -> None:
            train_means.clear()
            train_means.update({k: sums[k] / counts[k] for k in sums})
            sums.clear()
            counts.clear()
            if callback is not None:
                callback(self.step, dict(train_means))

        def validate() -> None:
            nonlocal val_step
            val_means.clear()
            val_means.update({f"val_{k}": v for k, v in self.evaluate(val_batches(), metrics).items()})
            val_step = self.step
            if callback is not None:
                callback(self.step, dict(val_means))

        with tqdm(total=cfg.steps, initial=self.step, disable=None, desc=f"train {self.framework}") as bar:
            while self.step < cfg.steps:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                for k, v in self.train_step(batch).items():
                    sums[k] = sums.get(k, 0.0) + v
                    counts[k] = counts.get(k, 0) + 1
                bar.update(1)
                if self.step % cfg.log_every == 0:
                    flush()
                if val_batches is not None and cfg.val_every and self.step % cfg.val_every == 0:
                    validate()
                if ckpt is not None and cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint(ckpt)
                    saved_step = self.step
        if sums:
            flush()
        if val_batches is not None and val_step != self.step:
            validate()
        if ckpt is not None and saved_step != self.step:
            self.save_checkpoint(ckpt)
        return {"step": float(self.step), **train_means, **val_means}

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def translate(self, occluded: Tensor, mask: Tensor | None = None) -> Tensor:
        """occluded (B,3,H,W) in [-1, 1] -> clean estimate in [-1, 1] (float32, on ``occluded``'s
        device); eval mode, no gradients, no RNG use."""
        return self._in_eval_mode(self._translate, occluded, mask)[0]

    @torch.no_grad()
    def _in_eval_mode(self, fn: Callable[[Tensor, Tensor | None], Tensor | Sequence[Tensor]],
                      occluded: Tensor, mask: Tensor | None) -> list[Tensor]:
        """``fn(x, m)`` on the trainer's device with the generators in eval mode (restored after) and
        autocast as in training; its output (a tensor or a list) as float32 tensors clamped to [-1, 1]
        on ``occluded``'s device."""
        modes = [(m, m.training) for m in self.generators.modules()]
        self.generators.eval()
        try:
            x = occluded.to(self.device).contiguous(memory_format=self.memory_format)
            m = mask.to(self.device).contiguous(memory_format=self.memory_format) if mask is not None else None
            with self._autocast():
                out = fn(x, m)
        finally:
            for module, training in modes:
                module.training = training
        outs = [out] if isinstance(out, Tensor) else list(out)
        return [o.float().clamp(-1, 1).to(occluded.device).contiguous() for o in outs]

    def measure(self, batch: Batch, metrics: MetricSuite | None = None,
                model_mask: Tensor | None = None) -> dict[str, Tensor]:
        """Per-image test metrics of one paired batch (``occluded``, ``clean``, ``mask``): the image
        metrics of ``metrics`` (default: those that need no weights) of :meth:`translate` against the clean face.
        ``model_mask``: the mask the model is given instead of the true one (end to end: a segmenter's
        prediction); the masked metrics still average over the true occluded pixels."""
        mask = batch.get("mask")
        pred = self.translate(batch["occluded"], mask if model_mask is None else model_mask)
        suite = metrics if metrics is not None else MetricSuite.none()
        return suite((pred + 1) / 2, (batch["clean"].float() + 1) / 2, mask=mask)

    def evaluate(self, batches: Iterable[Batch], metrics: MetricSuite | None = None) -> dict[str, float]:
        """Mean of :meth:`measure` over paired batches."""
        return aggregate([self.measure(batch, metrics) for batch in batches])

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs (tensors and plain data only)."""
        return {
            "framework": self.framework,
            "config": self.cfg.to_dict(),
            "step": self.step,
            "generators": self.generators.state_dict(),
            "discriminators": self.discriminators.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
        }

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` atomically to ``path``."""
        save_state(path, self.state_dict())

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore networks, optimisers, scaler, step and every RNG from ``path``: the following
        steps repeat those of the run that wrote it (bit-identical on CPU)."""
        state = load_state(path)   # on cpu: RNG states must stay there; load_state_dict moves the rest
        if state.get("framework") != self.framework:
            raise CheckpointError(f"{path}: checkpoint of framework {state.get('framework')!r}, "
                                  f"this trainer is {self.framework!r}")
        try:
            self.generators.load_state_dict(state["generators"])
            self.discriminators.load_state_dict(state["discriminators"])
            for name, opt in self.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"{path}: does not fit this trainer's networks "
                                  f"({str(err).splitlines()[0]})") from None
        if state["scaler"]:   # empty when written without AMP (e.g. on cpu)
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        set_rng_state(state["rng"])
