"""Runs tests/scripts/seed_program.py under the real CNTK from the current directory
(which holds train.ctf and test.ctf); cntk.tests.test_utils needs pytest, which the oracle
lacks, so a stand-in module is installed first."""
import os
import runpy
import sys
import types

sys.modules.setdefault('pytest', types.ModuleType('pytest'))
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'scripts', 'seed_program.py'),
               run_name='__main__')
