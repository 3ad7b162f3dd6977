"""The one exception the optimizer raises for problems a user can fix."""


class SgeError(Exception):
    """A problem with the input or the machine, stated in one line with its fix.

    The CLI prints it as ``Error: <message>`` and exits non-zero, without a traceback.
    """
