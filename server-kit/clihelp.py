"""Help text that shows each flag's default: an admin reads the defaults before the first run, not after."""

from __future__ import annotations

import argparse

__all__ = ["DefaultsHelpFormatter", "add_command"]


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: X)`` after each flag's help, except where there is no default to show (None, off switches)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or isinstance(action, argparse._StoreTrueAction):
            return action.help
        return super()._get_help_string(action)


def add_command(sub: argparse._SubParsersAction, name: str, summary: str, **kw: object) -> argparse.ArgumentParser:
    """A `server-kit NAME` subcommand whose help shows the defaults (with :class:`DefaultsHelpFormatter`)."""
    return sub.add_parser(name, help=summary, formatter_class=DefaultsHelpFormatter, **kw)
