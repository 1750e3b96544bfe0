"""Help text that shows each flag's default: an admin reads the defaults before the first run, not after."""

from __future__ import annotations

import argparse

__all__ = ["DefaultsHelpFormatter"]


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: X)`` after each flag's help, except where there is no default to show (None, off switches)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or isinstance(action, argparse._StoreTrueAction):
            return action.help
        return super()._get_help_string(action)
