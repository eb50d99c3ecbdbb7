"""A trainer with three networks and two phases, added here alone (one module plus one registration):
an autoencoder pre-trained for N steps, then a generator and a discriminator. The base trains each
phase's networks only from its start step until its stop step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unmask.training import TRAINERS, TrainConfig, build_trainer
from unmask.training.base import Phase, StepLosses, Trainer
from tests.training.helpers import SIZE, make_batch

PRETRAIN = 3   # autoencoder steps before the generator and discriminator start


class _Critic(nn.Module):
    """A discriminator keeps the contract: (source logits, class logits or None)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 4, stride=2)

    def forward(self, x):
        return self.conv(x), None


class ToyAEGAN(Trainer):
    framework = "toy_ae_gan"
    pairing = "paired"
    model_input = "image"
    WEIGHTS = {"adv": 1.0, "l1": 1.0}

    def build_networks(self):
        conv = lambda: nn.Conv2d(3, 3, 3, padding=1)   # noqa: E731
        self.updates: list[frozenset[str]] = []
        return ({"AE": nn.Sequential(conv(), nn.Tanh()), "G": nn.Sequential(conv(), nn.Tanh())},
                {"D": _Critic()})

    def phases(self):
        return [Phase("ae", ("AE",), self.cfg.lr_g, stop=PRETRAIN),
                Phase("g", ("G",), self.cfg.lr_g, start=PRETRAIN),
                Phase("d", "discriminators", self.cfg.lr_d, start=PRETRAIN)]

    def losses(self, batch, update):
        self.updates.append(update)
        totals, logs = {}, {}
        if "ae" in update:
            totals["ae"] = logs["ae_l1"] = F.l1_loss(self.generators["AE"](batch["clean"]), batch["clean"])
        if update & {"g", "d"}:
            with torch.no_grad():
                prior = self.generators["AE"](batch["occluded"])      # the frozen, pre-trained autoencoder
            fake = self.generators["G"](prior)
            crit = self.critique(self.discriminators["D"], batch["clean"], fake, "g" in update)
            totals["d"] = crit.d_loss
            if "g" in update:
                totals["g"] = self.w["adv"] * crit.g_loss + self.w["l1"] * F.l1_loss(fake, batch["clean"])
        return StepLosses(totals, logs)

    def _translate(self, occluded, mask):
        return self.generators["G"](self.generators["AE"](occluded))


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(TRAINERS, "_entries", dict(TRAINERS._entries))   # registered for this test only
    TRAINERS.register("toy_ae_gan")(ToyAEGAN)
    cfg = TrainConfig(framework="toy_ae_gan", device="cpu", threads=1, steps=2 * PRETRAIN, val_every=0,
                      checkpoint_every=0, log_every=1, lr_g=1e-2, lr_d=1e-2)
    cfg.discriminator.image_size = SIZE
    return build_trainer(cfg)


def _weights(trainer: Trainer) -> dict[str, list[torch.Tensor]]:
    nets = {**trainer.generators, **trainer.discriminators}
    return {role: [p.detach().clone() for p in net.parameters()] for role, net in nets.items()}


def test_three_networks_two_phases_start_and_stop_where_declared(toy):
    changed = []   # per step: the networks whose weights that step changed
    for step in range(2 * PRETRAIN):
        before = _weights(toy)
        logs = toy.train_step(make_batch(step))
        after = _weights(toy)
        changed.append({r for r in before if any(not torch.equal(a, b) for a, b in zip(before[r], after[r]))})
        assert logs and all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    assert toy.updates == [frozenset({"ae"})] * PRETRAIN + [frozenset({"g", "d"})] * PRETRAIN
    assert changed == [{"AE"}] * PRETRAIN + [{"G", "D"}] * PRETRAIN
    assert toy.step == 2 * PRETRAIN and set(toy.optimizers) == {"ae", "g", "d"}


def test_a_phase_naming_a_network_the_trainer_lacks_is_refused(monkeypatch):
    class Typo(ToyAEGAN):
        def phases(self):
            return [Phase("ae", ("A_E",), self.cfg.lr_g)]

    monkeypatch.setattr(TRAINERS, "_entries", dict(TRAINERS._entries))
    TRAINERS.register("toy_ae_gan")(Typo)
    with pytest.raises(TypeError, match=r"phase 'ae' names network 'A_E'; the networks: AE, G, D"):
        build_trainer(TrainConfig(framework="toy_ae_gan", device="cpu"))
