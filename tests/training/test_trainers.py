"""Every trainer trains: finite losses, the n_critic schedule, the one-forward step's gradients,
translate's contract."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from unmask.errors import UnmaskError
from unmask.losses import build_adv_loss
from unmask.training import TRAINERS, TrainConfig, build_trainer

from tests.training.helpers import SIZE, make_batch, tiny_config

CASES = [
    ("cyclegan", 1, "lsgan"), ("cyclegan", 1, "wgan_gp"), ("cyclegan", 1, "rahinge"),
    ("stargan", 1, "lsgan"), ("stargan", 1, "wgan_gp"), ("stargan", 2, "hinge"), ("stargan", 2, "ralsgan"),
    ("paired", 1, "minimax"), ("paired", 1, "wgan_gp"),
]


@pytest.mark.parametrize("framework, n_disc, adv", CASES)
def test_each_trainer_runs_with_finite_losses(framework: str, n_disc: int, adv: str) -> None:
    options = {"n_discriminators": n_disc} if framework == "stargan" else {}   # StarGAN's own option
    trainer = build_trainer(tiny_config(framework=framework, adv_loss=adv, **options))
    before = [p.detach().clone() for p in trainer.generators.parameters()]
    logs = {}
    for i in range(trainer.n_critic):   # ends with a generator step
        logs = trainer.train_step(make_batch(i, paired=framework == "paired"))
    assert trainer.step == trainer.n_critic
    assert {"d_total", "g_total", "g_adv"} <= logs.keys()
    assert all(math.isfinite(v) for v in logs.values()), logs
    after = list(trainer.generators.parameters())
    assert all(not torch.equal(b, a) for b, a in zip(before, after)), "every generator weight moves"


@pytest.mark.parametrize("framework", ["cyclegan", "stargan"])   # the paired trainer pastes by the true mask
def test_mask_approach_logs_the_mask_mean(framework: str) -> None:
    trainer = build_trainer(tiny_config(framework=framework, generator={"approach": "mask"}))
    logs = trainer.train_step(make_batch(0, paired=framework == "paired"))
    assert 0.0 < logs["mask_mean"] < 1.0


def _adam_steps(opt: torch.optim.Optimizer) -> int:
    return int(next(iter(opt.state.values()))["step"])


def test_wgan_gp_takes_n_critic_discriminator_steps_per_generator_step() -> None:
    trainer = build_trainer(tiny_config(adv_loss="wgan_gp"))
    assert trainer.n_critic == build_adv_loss("wgan_gp").default_n_critic == 5
    g_steps = []
    for i in range(10):
        logs = trainer.train_step(make_batch(i, paired=False))
        g_steps.append("g_total" in logs)
        assert "d_gp" in logs
    assert g_steps == [False] * 4 + [True] + [False] * 4 + [True]
    assert (_adam_steps(trainer.optimizers["d"]), _adam_steps(trainer.optimizers["g"])) == (10, 2)


def test_explicit_n_critic_overrides_the_loss_default() -> None:
    trainer = build_trainer(tiny_config(adv_loss="wgan_gp", n_critic=2))
    for i in range(4):
        trainer.train_step(make_batch(i, paired=False))
    assert (_adam_steps(trainer.optimizers["d"]), _adam_steps(trainer.optimizers["g"])) == (4, 2)


def _grads(params) -> list[torch.Tensor]:
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in params]


@pytest.mark.parametrize("adv", ["lsgan", "rahinge"])
def test_one_forward_step_matches_the_classic_two_pass_gradients(adv: str) -> None:
    """G grads = those of the G loss with D frozen; D grads = those of D on real and detached fakes
    (the classic CycleGAN loop), although the step runs each network once per input."""
    trainer = build_trainer(tiny_config(adv_loss=adv, weights={"identity": 0.0}))
    g, d = copy.deepcopy(trainer.generators), copy.deepcopy(trainer.discriminators)
    batch = make_batch(0, paired=False)
    trainer.train_step(batch)
    got_g, got_d = _grads(trainer.generators.parameters()), _grads(trainer.discriminators.parameters())

    a, b = batch["occluded"], batch["clean"]
    loss, recon = trainer.adv, torch.nn.functional.l1_loss
    fake_b, fake_a = g["G_AB"](a), g["G_BA"](b)
    g_adv = (loss.g_loss(d["D_B"](b)[0], d["D_B"](fake_b)[0]) + loss.g_loss(d["D_A"](a)[0], d["D_A"](fake_a)[0]))
    g_loss = g_adv + 10 * (recon(g["G_BA"](fake_b), a) + recon(g["G_AB"](fake_a), b))
    want_g = torch.autograd.grad(g_loss, list(g.parameters()))
    d_loss = (loss.d_loss(d["D_B"](b)[0], d["D_B"](fake_b.detach())[0])
              + loss.d_loss(d["D_A"](a)[0], d["D_A"](fake_a.detach())[0]))
    want_d = torch.autograd.grad(d_loss, list(d.parameters()))
    for got, want in ((got_g, want_g), (got_d, want_d)):
        for x, y in zip(got, want):
            torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6)


_PARSER = {"name": "unet", "depth": 2, "base_channels": 4, "out_channels": 11}
OWN_CONFIG = {   # trainers whose networks tiny_config's do not fit (seed 003's need 64 px and a parser)
    "parser": {"framework": "parser", "device": "cpu", "threads": 1, "batch_size": 4, "steps": 4,
               "image_size": SIZE, "generator": _PARSER},
    "portrait": {"framework": "portrait", "device": "cpu", "threads": 1, "batch_size": 4, "steps": 4,
                 "image_size": 64, "parser_steps": 1, "parser": _PARSER,
                 "local": {"channels": 8, "latent": 8, "hidden": 8},
                 "generator": {"base_channels": 8, "n_blocks": 1}, "discriminator": {"base_channels": 4}},
    "parsing_unmask": {"framework": "parsing_unmask", "device": "cpu", "threads": 1, "batch_size": 4, "steps": 4,
                       "image_size": 64, "parser_steps": 1, "parser": _PARSER, "completer": _PARSER,
                       "local": {"channels": 8, "latent": 8, "hidden": 8},
                       "generator": {"base_channels": 8, "n_blocks": 1}, "discriminator": {"base_channels": 4}},
}


@pytest.mark.parametrize("framework", sorted(TRAINERS))
def test_translate_is_a_side_effect_free_eval_call(framework: str) -> None:
    own = OWN_CONFIG.get(framework)
    trainer = build_trainer(TrainConfig.from_dict(own) if own else tiny_config(framework=framework))
    size = trainer.cfg.image_size
    batch = {k: torch.nn.functional.interpolate(v, size=size) for k, v in make_batch(0).items()}
    batch["parsing"] = torch.randint(0, 11, (4, size, size), generator=torch.Generator().manual_seed(0))
    image, cond = trainer.inputs(batch)       # what the trainer's model takes of a test batch
    if cond is not None and cond.dim() == 3:
        cond = cond[:, None].float()
    state = torch.get_rng_state()
    out = trainer.translate(image, cond)
    assert out.shape == (4, 3, size, size) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1
    assert torch.equal(torch.get_rng_state(), state), "translate must not consume random numbers"
    assert all(m.training for m in trainer.generators.modules()), "train mode is restored"
    assert torch.equal(out, trainer.translate(image, cond))


def test_paired_output_keeps_every_unoccluded_pixel() -> None:
    trainer = build_trainer(tiny_config(framework="paired"))
    batch = make_batch(0)
    out = trainer.translate(batch["occluded"], batch["mask"])
    keep = batch["mask"].expand_as(out) == 0
    assert torch.equal(out[keep], batch["occluded"][keep])
    assert not torch.equal(out[~keep], batch["occluded"][~keep])


def test_paired_needs_the_mask() -> None:
    trainer = build_trainer(tiny_config(framework="paired"))
    with pytest.raises(UnmaskError, match="mask"):
        trainer.translate(make_batch(0)["occluded"])
    with pytest.raises(UnmaskError, match="mask"):
        trainer.train_step(make_batch(0, paired=False))
