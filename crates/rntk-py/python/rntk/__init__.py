"""rntk: CNTK 2.x's Python API on rntk's Rust engine.

``import rntk as C`` works like ``import cntk as C``; ``python -m rntk.compat script.py``
runs a CNTK script unchanged (``import cntk`` resolves to rntk)."""

from . import _rntk
from ._rntk import __version__
from .variables import Variable, Parameter, Constant, Axis, Record
from .ops import *  # noqa: F401,F403
from .ops import sequence
from .ops.functions import Function, CloneMethod, load_model
from .core import Value, NDArrayView
from .device import *  # noqa: F401,F403
from .learners import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from .initializer import *  # noqa: F401,F403
from .train import *  # noqa: F401,F403
from .eval import Evaluator
from . import ops, layers, learners, losses, metrics, io, logging, train, device, initializer, \
    cntk_py, debugging, core, variables, eval, tests
from .layers import default_options, default_options_for
from .train.distributed import Communicator, data_parallel_distributed_learner, \
    block_momentum_distributed_learner
from .variables import Axis as _Axis

FreeDimension = -3
InferredDimension = -1
DATA_TYPE = None

ops.functions = __import__('rntk.ops.functions', fromlist=['Function'])
distributed = train.distributed


def user_function(*args, **kwargs):
    raise NotImplementedError('user_function: Python-defined ops are not supported by rntk')
