"""``python -m medchain.cli``: the same as the ``medchain`` command."""

from medchain.cli import main

main()
