"""``python -m medchain``: the same as the ``medchain`` command."""

from medchain.cli import main

main()
