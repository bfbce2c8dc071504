"""One run parameter, declared: its name, type, default, documentation and check.

Services declare their own parameters with :class:`Param` (``Service.params``);
:mod:`vespa_curation.config` adds the ones every service accepts and checks a run's
values against them before any work starts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable


class ParameterError(ValueError):
    """A parameter is unknown, missing or of a wrong value; the message names it."""


#: A password in a connection string (``PWD=``, ``password=``) or in a URL
#: (``scheme://user:password@host``).
_CREDENTIAL = re.compile(r"(?i)\b(pwd|passwd|password)\s*=\s*[^\s;]"
                         r"|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")


def looks_like_credential(text: str) -> bool:
    """Whether ``text`` holds a password (a connection string's ``PWD=``/``password=``,
    a URL's ``user:password@``): such a value must never be a parameter, since
    parameters are written into run logs and executed notebooks."""
    return bool(_CREDENTIAL.search(str(text)))


@dataclass(frozen=True)
class Param:
    """One parameter: its name, type, default and documentation."""

    name: str
    type: type
    default: Any = None
    doc: str = ""
    choices: tuple | None = None
    required: bool = False
    check: Callable[[Any], str | None] | None = None  # returns an error text or None

    def coerce(self, value: Any) -> Any:
        """``value`` (text from ``-p key=value``, or a value of a YAML file) converted
        to the declared type and checked; None (an empty ``-p key=``) is refused for a
        required parameter and for a number or flag that has a default."""
        if value is None:
            if self.required:
                raise ParameterError(f"parameter {self.name!r} is required: {self.doc}")
            if self.default is not None and self.type is not str:
                raise ParameterError(f"parameter {self.name!r} needs a value (an empty "
                                     f"value means none; default {self.default!r})")
            return None
        try:
            if self.type is bool and isinstance(value, str):
                low = value.strip().lower()
                if low not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                value = low in ("true", "1", "yes")
            elif self.type is bool:
                if not isinstance(value, (bool, int)):
                    raise ValueError(value)
                value = bool(value)
            elif self.type is int:
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                if isinstance(value, bool):
                    raise ValueError(value)
                value = int(value)
            elif self.type is float:
                value = float(value)
            elif self.type is str:
                if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                    raise ValueError(value)
                value = str(value)
        except (TypeError, ValueError):
            raise ParameterError(
                f"parameter {self.name!r}: {value!r} is not a {self.type.__name__} "
                f"({self.doc})") from None
        if self.choices is not None and value not in self.choices:
            raise ParameterError(
                f"parameter {self.name!r}: {value!r} is not accepted; accepted values: "
                + ", ".join(map(str, self.choices)))
        if self.check is not None:
            err = self.check(value)
            if err:
                raise ParameterError(f"parameter {self.name!r}: {err}")
        return value
