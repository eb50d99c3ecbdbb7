"""A trainer with three networks and two phases, added here alone (one module plus one registration):
an autoencoder pre-trained for N steps, then a generator and a discriminator. Its three networks are
roles configured under ``train:`` like any other, its pre-training length is its own option, and the
base trains each phase's networks only from its start step until its stop step."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from unmask.catalog.capabilities import Capability
from unmask.errors import ConfigError
from unmask.models import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator
from unmask.training import TRAINERS, TrainConfig, build_trainer
from unmask.training.base import Phase, StepLosses, Trainer
from unmask.training.config import Role
from tests.training.helpers import SIZE, make_batch

PRETRAIN = 3   # autoencoder steps before the generator and discriminator start
SMALL_UNET = {"name": "unet", "depth": 2, "base_channels": 4}


@dataclass(frozen=True)
class ToyOptions:
    pretrain_steps: int = 10


class ToyAEGAN(Trainer):
    framework = "toy_ae_gan"
    pairing = "paired"
    model_input = "image"
    WEIGHTS = {"adv": 1.0, "l1": 1.0}
    NETWORKS = {"autoencoder": Role(GENERATORS, frozenset({Capability.IMAGE_ONLY})),
                "generator": Role(GENERATORS, frozenset({Capability.IMAGE_ONLY})),
                "discriminator": Role(DISCRIMINATORS)}
    OPTIONS = ToyOptions

    def build_networks(self):
        nets = self.cfg.networks
        self.updates: list[frozenset[str]] = []
        return ({"AE": build_generator(nets["autoencoder"]), "G": build_generator(nets["generator"])},
                {"D": build_discriminator(nets["discriminator"])})

    def phases(self):
        n = self.cfg.options.pretrain_steps
        return [Phase("ae", ("AE",), self.cfg.lr_g, stop=n),
                Phase("g", ("G",), self.cfg.lr_g, start=n),
                Phase("d", "discriminators", self.cfg.lr_d, start=n)]

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


TOY_TRAIN = {"framework": "toy_ae_gan", "device": "cpu", "threads": 1, "steps": 2 * PRETRAIN, "val_every": 0,
             "checkpoint_every": 0, "log_every": 1, "lr_g": 1e-2, "lr_d": 1e-2, "image_size": SIZE,
             "pretrain_steps": PRETRAIN, "autoencoder": SMALL_UNET, "generator": SMALL_UNET,
             "discriminator": {"name": "patchgan", "n_layers": 2, "base_channels": 4}}


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(TRAINERS, "_entries", dict(TRAINERS._entries))   # registered for this test only
    TRAINERS.register("toy_ae_gan")(ToyAEGAN)


@pytest.fixture
def toy(registered):
    return build_trainer(TrainConfig.from_dict(TOY_TRAIN))


def test_its_networks_and_option_are_keys_of_train_checked_like_any_other(registered):
    cfg = TrainConfig.from_dict(TOY_TRAIN)
    assert set(cfg.networks) == {"autoencoder", "generator", "discriminator"}
    assert cfg.networks["discriminator"].image_size == SIZE and cfg.options.pretrain_steps == PRETRAIN
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"^train\.autoencoder\.depht: unknown key for generator 'unet'"):
        TrainConfig.from_dict({**TOY_TRAIN, "autoencoder": {"name": "unet", "depht": 2}})
    with pytest.raises(ConfigError, match=r"^train\.autoencoder\.name: the toy_ae_gan trainer needs an autoencoder "
                                          r"that runs on the image alone"):
        TrainConfig.from_dict({**TOY_TRAIN, "autoencoder": {**SMALL_UNET, "stages": 2}})


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
        build_trainer(TrainConfig.from_dict(TOY_TRAIN))
