"""Run CNTK 2.x scripts unchanged: ``python -m rntk.compat SCRIPT.py [ARGS]``.

Installs an import hook that makes ``cntk`` and every ``cntk.*`` module name resolve to
rntk's (``import cntk as C``, ``from cntk.layers import Dense``,
``import cntk.tests.test_utils``), then runs the script as ``__main__``."""

import importlib
import importlib.machinery
import sys

__all__ = ['install', 'main']


class _Loader(object):
    """Hands out the rntk module already imported (the loader protocol needs no base class;
    ``importlib.abc`` would import ``importlib.resources``, pathlib, tempfile…)."""

    def __init__(self, module):
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        pass


class CntkAliasFinder(object):
    """Maps ``cntk`` / ``cntk.X`` to ``rntk`` / ``rntk.X``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != 'cntk' and not fullname.startswith('cntk.'):
            return None
        target_name = 'rntk' + fullname[len('cntk'):]
        try:
            module = importlib.import_module(target_name)
        except ImportError:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader(module),
                                              is_package=hasattr(module, '__path__'))


def install():
    """Make ``import cntk`` resolve to rntk in this process."""
    if not any(isinstance(f, CntkAliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, CntkAliasFinder())


def main(argv=None):
    import runpy
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ('-h', '--help'):
        print('usage: python -m rntk.compat SCRIPT.py [ARGS]\n\n'
              'Runs a CNTK 2.x script with `import cntk` resolved to rntk.')
        return 0 if argv else 2
    install()
    sys.argv = list(argv)
    sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(argv[0])))
    runpy.run_path(argv[0], run_name='__main__')
    return 0


if __name__ == '__main__':
    sys.exit(main())
