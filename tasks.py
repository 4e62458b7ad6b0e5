"""Invoke tasks for operators: `invoke --list`, `invoke migrate --env dev`.

The tasks live in migrate/cli.py so the installed `migrate` command offers the same ones.
"""

from migrate.cli import ns

namespace = ns
