"""Trainers of seed 000 (CycleGAN, unified StarGAN, paired inpainting), built by name from TrainConfig."""

from unmask.training.base import Trainer
from unmask.training.checkpoint import CheckpointError
from unmask.training.config import TrainConfig
from unmask.training.cyclegan import CycleGANTrainer
from unmask.training.paired import PairedInpaintingTrainer
from unmask.training.registry import TRAINERS, build_trainer, load_trainer
from unmask.training.seeding import rng_state, seed_everything, set_rng_state
from unmask.training.stargan import StarGANTrainer

__all__ = ["CheckpointError", "CycleGANTrainer", "PairedInpaintingTrainer", "StarGANTrainer", "TRAINERS",
           "TrainConfig", "Trainer", "build_trainer", "load_trainer", "rng_state", "seed_everything",
           "set_rng_state"]
