"""The base of every settings class of a profile, and options laid over a section.

Every section of a profile (``rstar.config.Profile``) is a :class:`Settings`: unknown keys
are errors (a typo never passes silently) and values are frozen once loaded. This module
imports nothing of rstar, so any package can define its own section on it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    """A section of a profile: strict (unknown keys are errors) and frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ProfileError(ValueError):
    """A profile, or a setting in it, that cannot be used as written; the message says
    what to change."""


SettingsT = TypeVar("SettingsT", bound=BaseModel)


def with_overrides(settings: SettingsT, **updates: Any) -> SettingsT:
    """``settings`` with the fields given a value (not None) replaced, validated again (a
    command line's options laid over a profile section)."""
    changed = {name: value for name, value in updates.items() if value is not None}
    return type(settings).model_validate({**settings.model_dump(), **changed})
