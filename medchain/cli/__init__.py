"""The ``medchain`` command: one entry point, a sub-command group per role.

Layout: ``_app`` (root group, global options, error handling), ``_context`` (what every command
shares: node, manifest, sender, data directory), ``_options`` (parameter types), ``_render``
(one column list gives both the table and the ``--json`` output), then one module per group.
Groups are imported only when used, so ``medchain --help`` does not load web3.
"""

from medchain.cli._app import cli, main

__all__ = ["cli", "main"]
