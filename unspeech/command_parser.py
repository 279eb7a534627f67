"""The argument parser of every unspeech command line.

:class:`CommandParser` is ``argparse.ArgumentParser`` with two house rules:

* **Both spellings.** Every long flag parses as ``--x_y`` and as ``--x-y`` (``--output_utt2spk`` and
  ``--output-utt2spk``, ``--nounit_normalize_var`` and ``--nounit-normalize-var``); ``--help`` shows
  one, dashed, spelling per option (the first dashed name it was given, else its first name with
  dashes). Seed command lines keep working verbatim.
* **A short --help.** A command names its main options with :meth:`CommandParser.set_brief`; ``--help``
  then lists only those (still grouped), and ``--help-all`` every option.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from typing import Iterable, Iterator

__all__ = ["CommandParser", "shown_flag", "set_brief"]


def set_brief(parser: argparse.ArgumentParser, dests: Iterable[str]) -> None:
    """:meth:`CommandParser.set_brief` when ``parser`` is one (a plain ArgumentParser shows everything)."""
    if isinstance(parser, CommandParser):
        parser.set_brief(dests)


def shown_flag(option_strings: Iterable[str]) -> str:
    """The spelling ``--help`` shows for an option: its first dashed long name, else its first long
    name with ``_`` turned into ``-``."""
    longs = [s for s in option_strings if s.startswith("--")]
    return next((s for s in longs if "_" not in s), "--" + longs[0][2:].replace("_", "-"))


class _HelpAllAction(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.print_help(full=True)
        parser.exit()


class CommandParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that accepts both spellings of each flag and can keep ``--help`` short."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._brief: set[str] | None = None
        self._spelled = -1
        self.help_all_hint = ""  # the command line that shows every option (default: PROG --help-all)
        if self.add_help:  # accepted everywhere, listed where --help is short
            self.add_argument("--help-all", action=_HelpAllAction, help=argparse.SUPPRESS)

    # ------------------------------------------------------------------ short help

    def set_brief(self, dests: Iterable[str]) -> None:
        """Show only the options with these ``dest`` names in ``--help`` (``--help-all`` shows all)."""
        self._brief = set(dests)
        for action in self._actions:
            if isinstance(action, _HelpAllAction):
                action.help = "show every option and exit"

    def _hidden_in_brief(self) -> list[argparse.Action]:
        if self._brief is None:
            return []
        keep = self._brief | {"help"}
        return [a for a in self._actions if a.help is not argparse.SUPPRESS and a.dest not in keep
                and not isinstance(a, (_HelpAllAction, argparse._SubParsersAction)) and a.option_strings]

    @contextlib.contextmanager
    def _brief_view(self, full: bool) -> Iterator[int]:
        """Hide the options outside the brief set while help or usage is formatted; yields how many."""
        self._spell_both_ways()
        hidden = [] if full else self._hidden_in_brief()
        saved = [a.help for a in hidden]
        for action in hidden:
            action.help = argparse.SUPPRESS
        try:
            yield len(hidden)
        finally:
            for action, text in zip(hidden, saved):
                action.help = text

    def format_usage(self) -> str:
        with self._brief_view(full=False):
            return self._one_style(super().format_usage())

    def format_help(self, full: bool = False) -> str:
        with self._brief_view(full) as hidden:
            text = self._one_style(super().format_help())
        if hidden:
            text += f"\n{hidden} more options: {self.help_all_hint or self.prog + ' --help-all'}\n"
        return text

    def _one_style(self, text: str) -> str:
        """Flags named in help texts, usage and epilog in the spelling the option list shows."""
        def shown(match: re.Match) -> str:
            action = self._option_string_actions.get(match.group(0))
            if action is None or not match.group(0).startswith("--"):
                return match.group(0)
            if action.help is argparse.SUPPRESS or not any(s.startswith("--") for s in action.option_strings):
                return "--" + match.group(0)[2:].replace("_", "-")
            return shown_flag(action.option_strings)

        return re.sub(r"(?<![\w-])--[A-Za-z][\w-]*", shown, text)

    def print_help(self, file=None, full: bool = False) -> None:
        self._print_message(self.format_help(full=full), file if file is not None else sys.stdout)

    # ------------------------------------------------------------------ both spellings

    def _spell_both_ways(self) -> None:
        """Register the other spelling of every long flag and show one dashed spelling in help."""
        if self._spelled == len(self._actions):
            return
        for action in self._actions:
            longs = [s for s in action.option_strings if s.startswith("--")]
            if not longs:
                continue
            for name in longs:
                for other in ("--" + name[2:].replace("_", "-"), "--" + name[2:].replace("-", "_")):
                    # a different option already holding the other spelling keeps it
                    self._option_string_actions.setdefault(other, action)
            if action.help is not argparse.SUPPRESS:
                action.option_strings = [s for s in action.option_strings if not s.startswith("--")]
                action.option_strings.append(shown_flag(longs))
        self._spelled = len(self._actions)

    def parse_known_args(self, args=None, namespace=None):
        self._spell_both_ways()
        return super().parse_known_args(args, namespace)

    def _get_option_tuples(self, option_string):
        # an abbreviation matching two spellings of one option is not ambiguous
        unique, seen = [], set()
        for match in super()._get_option_tuples(option_string):
            if id(match[0]) not in seen:
                seen.add(id(match[0]))
                unique.append(match)
        return unique
