"""Prints the relative errors measured by the conversion equivalence tests."""
import sys


def pytest_terminal_summary(terminalreporter):
  helpers = sys.modules.get('convert.convert_helpers')  # imported by the tests (not under xdist workers)
  if helpers is not None and helpers.RECORDS:
    terminalreporter.section('jaxseg.convert relative errors (||jax - torch|| / ||torch||)')
    for name, err in helpers.RECORDS:
      terminalreporter.write_line(f'{err:.3e}  {name}')
