"""Seed 001's coarse-to-fine inpainter: every conv kind at every size, known pixels kept, sizes."""

from __future__ import annotations

import pytest
import torch

from unmask.errors import ConfigError
from unmask.models import GENERATORS, build_generator, count_parameters
from unmask.models.inpainter import InpainterConfig
from unmask.models.two_stage import TwoStage


def _net(conv: str, stages: int = 2, base: int = 8):
    torch.manual_seed(0)
    return build_generator(InpainterConfig(conv=conv, stages=stages, base_channels=base, n_dilated=2),
                           cond_channels=1)


def _inputs(size: int, b: int = 2):
    g = torch.Generator().manual_seed(size)
    x = torch.rand(b, 3, size, size, generator=g) * 2 - 1
    m = torch.zeros(b, 1, size, size)
    m[:, :, size // 2:, size // 4: 3 * size // 4] = 1
    return x * (1 - m), m


@pytest.mark.parametrize("conv", ["plain", "gated", "imputed"])
@pytest.mark.parametrize("size", [32, 64, 256])
def test_shapes_and_known_pixels_for_every_conv_kind(conv, size):
    net = _net(conv, base=4 if size == 256 else 8)
    x, m = _inputs(size, b=1)
    with torch.no_grad():
        out = net(x, m)
        stages = net.forward_stages(x, m)
    assert out.shape == x.shape and len(stages) == 2 and torch.isfinite(out).all()
    assert out.abs().max() <= 1
    assert torch.equal(out[(m == 0).expand_as(out)], x[(m == 0).expand_as(x)])   # pasted back exactly


def test_parameter_counts_follow_the_conv_kind():
    plain, imputed, gated = (count_parameters(_net(k, base=32)) for k in ("plain", "imputed", "gated"))
    assert 1.0 < imputed / plain < 1.05        # seed 001: imputed adds about 2 %
    assert 1.9 < gated / plain < 2.01          # gated about doubles (the output conv is not gated)


def test_one_stage_is_the_coarse_network_and_config_errors_name_the_key():
    assert not isinstance(_net("gated", stages=1), TwoStage)
    with pytest.raises(ConfigError, match=r"train\.generator\.conv: unknown 'partial'; choose one of gated, imputed, plain"):
        GENERATORS.config({"name": "inpainter", "conv": "partial"}, "train.generator")
    with pytest.raises(ConfigError, match="needs the hole mask"):
        build_generator(InpainterConfig(), cond_channels=0)


def test_a_paired_trainer_trains_it():
    from tests.training.helpers import make_batch
    from unmask.training import TrainConfig, build_trainer

    cfg = TrainConfig.from_dict(dict(framework="paired", device="cpu", threads=1, batch_size=4, steps=2,
                                     generator={"name": "inpainter", "conv": "imputed", "base_channels": 4,
                                                "n_dilated": 1},
                                     image_size=32, discriminator={"base_channels": 4},
                                     adv_loss="hinge", weights={"adv": 0.1, "l1": 1.0, "stage1": 1.0}))
    trainer = build_trainer(cfg)
    logs = trainer.train_step(make_batch(0))
    assert {"g_s1_l1", "g_s2_l1", "d_adv_s1", "d_adv_s2"} <= logs.keys()
