"""Which errors are jaxseg's own, worded ones (printed as one line by `jaxseg.main`)."""
import os

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: jaxseg's own code: the package and the repository's config files.
_OWN = (_PACKAGE + os.sep, os.path.join(os.path.dirname(_PACKAGE), 'configs') + os.sep)
#: Exception types that are programming errors: always shown with their traceback.
BUGS = (AssertionError, AttributeError, NameError, NotImplementedError, TypeError,
        UnboundLocalError, RecursionError)


def raised_by_jaxseg(error: BaseException) -> bool:
  """True when the innermost frame that raised `error` is jaxseg's own code (a deliberate,
  worded error), False for one that escaped from a library or is a programming error."""
  if isinstance(error, BUGS):
    return False
  tb = error.__traceback__
  last = None
  while tb is not None:
    last = tb.tb_frame.f_code.co_filename
    tb = tb.tb_next
  return last is not None and os.path.abspath(last).startswith(_OWN)
