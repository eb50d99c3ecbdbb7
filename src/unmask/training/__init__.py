"""Trainers, built by framework name from TrainConfig (``TRAINERS``). Importing this package registers
every trainer module listed below."""

from unmask.training.base import Phase, Trainer
from unmask.training.checkpoint import CheckpointError
from unmask.training.config import TrainConfig
from unmask.training.build import build_trainer, load_trainer
from unmask.training.registry import TRAINERS, trainer_class
from unmask.training.seeding import rng_state, seed_everything, set_rng_state

# trainer families (each registers itself)
from unmask.training.cyclegan import CycleGANTrainer  # noqa: E402
from unmask.training.paired import PairedInpaintingTrainer  # noqa: E402
from unmask.training.parser import ParserTrainer  # noqa: E402
from unmask.training.portrait import PortraitTrainer  # noqa: E402
from unmask.training.parsing_unmask import ParsingUnmaskTrainer  # noqa: E402
from unmask.training.segmenter import SegmenterTrainer  # noqa: E402
from unmask.training.stargan import StarGANTrainer  # noqa: E402

__all__ = ["CheckpointError", "CycleGANTrainer", "PairedInpaintingTrainer", "Phase", "StarGANTrainer",
           "TRAINERS", "TrainConfig", "Trainer", "build_trainer", "load_trainer", "rng_state",
           "seed_everything", "set_rng_state", "trainer_class"]
