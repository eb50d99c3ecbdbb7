"""Checkpoints: exact resume on CPU, weights_only loading, atomic writes, clear errors."""

from __future__ import annotations

import dataclasses
import os
import random

import numpy as np
import pytest
import torch

from unmask.training import CheckpointError, build_trainer, load_trainer
from unmask.training import checkpoint as checkpoint_module

from tests.training.helpers import batch_stream, tiny_config


def _tensors(trainer) -> dict[str, torch.Tensor]:
    """Every parameter, buffer and optimiser state tensor of a trainer, by name."""
    out = {f"g.{k}": v for k, v in trainer.generators.state_dict().items()}
    out.update({f"d.{k}": v for k, v in trainer.discriminators.state_dict().items()})
    for name, opt in trainer.optimizers.items():
        for i, st in opt.state_dict()["state"].items():
            out.update({f"{name}.{i}.{k}": torch.as_tensor(v) for k, v in st.items()})
    return out


@pytest.mark.parametrize("framework, adv, disc", [
    ("cyclegan", "wgan_gp", "stargan"),   # random interpolates, n_critic schedule across the cut
    ("stargan", "lsgan", "patchgan"),     # BatchNorm running stats
    ("paired", "hinge", "red"),           # spectral-norm power-iteration buffers
])
def test_resume_gives_bit_identical_next_steps(tmp_path, framework: str, adv: str, disc: str) -> None:
    paired = framework == "paired"
    cfg = tiny_config(framework=framework, adv_loss=adv, discriminator={"name": disc}, steps=7)
    straight = build_trainer(cfg)
    straight.fit(batch_stream(paired=paired))

    first = build_trainer(dataclasses.replace(cfg, steps=3))
    first.fit(batch_stream(paired=paired), checkpoint_dir=tmp_path)
    resumed = build_trainer(dataclasses.replace(cfg, seed=123))   # different init, RNGs moved on
    torch.rand(5), np.random.rand(3), random.random()
    resumed.load_checkpoint(tmp_path / "last.pt")
    assert resumed.step == 3
    resumed.fit(batch_stream(start=resumed.step, paired=paired))

    want, got = _tensors(straight), _tensors(resumed)
    assert want.keys() == got.keys()
    different = [k for k in want if not torch.equal(want[k], got[k])]
    assert not different, different[:5]


def test_resume_without_the_rng_state_would_differ(tmp_path) -> None:
    """The comparison above can fail: the gradient penalty's random interpolates matter."""
    cfg = tiny_config(adv_loss="wgan_gp", steps=5)
    straight = build_trainer(cfg)
    straight.fit(batch_stream(paired=False))
    first = build_trainer(dataclasses.replace(cfg, steps=3))
    first.fit(batch_stream(paired=False), checkpoint_dir=tmp_path)
    resumed = build_trainer(cfg)
    resumed.load_checkpoint(tmp_path / "last.pt")
    torch.rand(1)   # one random number drawn after the restore
    resumed.fit(batch_stream(start=3, paired=False))
    want, got = _tensors(straight), _tensors(resumed)
    assert any(not torch.equal(want[k], got[k]) for k in want)

def test_rng_states_are_restored(tmp_path) -> None:
    trainer = build_trainer(tiny_config())
    trainer.save_checkpoint(tmp_path / "c.pt")
    want = (torch.rand(3), np.random.rand(3), random.random())
    trainer.load_checkpoint(tmp_path / "c.pt")
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(want[0], got[0]) and np.array_equal(want[1], got[1]) and want[2] == got[2]


def test_checkpoint_loads_with_weights_only(tmp_path) -> None:
    trainer = build_trainer(tiny_config(framework="stargan"))
    trainer.train_step(next(batch_stream(paired=False)))
    trainer.save_checkpoint(tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert state["step"] == 1 and state["framework"] == "stargan"
    assert state["config"]["framework"] == "stargan"
    assert os.listdir(tmp_path) == ["c.pt"], "no temporary file is left behind"


def test_load_trainer_rebuilds_from_the_checkpoint(tmp_path) -> None:
    trainer = build_trainer(tiny_config(framework="paired", generator={"approach": "mask"}))
    trainer.fit(batch_stream(), checkpoint_dir=tmp_path)
    again = load_trainer(tmp_path / "last.pt", steps=10)
    assert type(again) is type(trainer) and again.step == 4 and again.cfg.steps == 10
    for a, b in zip(trainer.generators.parameters(), again.generators.parameters()):
        assert torch.equal(a, b)


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    trainer = build_trainer(tiny_config())
    path = tmp_path / "last.pt"
    trainer.save_checkpoint(path)

    def broken_save(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise OSError("disk full")

    trainer.step = 9
    monkeypatch.setattr(checkpoint_module.torch, "save", broken_save)
    with pytest.raises(OSError):
        trainer.save_checkpoint(path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 0
    assert os.listdir(tmp_path) == ["last.pt"]


def test_bad_checkpoints_are_one_line_errors_naming_the_file(tmp_path) -> None:
    trainer = build_trainer(tiny_config())
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint not found"):
        trainer.load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: not a readable checkpoint"):
        trainer.load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="foreign.pt: not an unmask checkpoint"):
        trainer.load_checkpoint(tmp_path / "foreign.pt")
    build_trainer(tiny_config(framework="stargan")).save_checkpoint(tmp_path / "star.pt")
    with pytest.raises(CheckpointError, match="star.pt: checkpoint of framework 'stargan'"):
        trainer.load_checkpoint(tmp_path / "star.pt")
    build_trainer(tiny_config(generator={"base_channels": 4})).save_checkpoint(tmp_path / "narrow.pt")
    with pytest.raises(CheckpointError, match="narrow.pt: does not fit") as err:
        trainer.load_checkpoint(tmp_path / "narrow.pt")
    assert "\n" not in str(err.value)
