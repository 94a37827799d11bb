"""Training (CNTK's ``cntk.train``)."""

from .trainer import Trainer
from .training_session import training_session, TrainingSession, CheckpointConfig, \
    CrossValidationConfig, TestConfig, minibatch_size_schedule, DataUnit
from . import distributed

__all__ = ['Trainer', 'training_session', 'TrainingSession', 'CheckpointConfig',
           'CrossValidationConfig', 'TestConfig', 'minibatch_size_schedule', 'DataUnit', 'distributed']
