"""``cntk.logging.progress_print``."""
from . import ProgressPrinter, TensorBoardProgressWriter, ProgressWriter, \
    TrainingSummaryProgressCallback, log_number_of_parameters  # noqa: F401
