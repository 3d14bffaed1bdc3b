"""The one exception a command raises for a mistake of the user's.

A missing or unreadable file, a contradicting option, a sample that breaks the data contract: the
user can fix these, so ``muongan`` prints one line naming the problem on stderr and exits with status 2
(:func:`muongan.cli.main`), never a traceback. Bugs stay exceptions of their own kind and keep theirs.
"""


class UserError(Exception):
    """A problem the user can fix; its message names it (the file, the option, the value)."""
