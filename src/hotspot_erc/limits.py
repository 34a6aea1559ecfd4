"""Ceilings on the memory an input file may make this process allocate.

A file someone else made decides sizes: a checkpoint's config decides how large the model is, an
array header decides how much to read, a pickle decides how long a byte string is. A small file
can ask for gigabytes, so every such size is compared with a limit *before* anything is
allocated. A genuine input larger than a limit can be let through knowingly: each limit is read
from the environment variable ``HOTSPOT_ERC_LIMIT_<NAME>`` (an integer), which the error names.

==================  ===========  ==========================================================
name                default      what it bounds
==================  ===========  ==========================================================
``array_bytes``     2 GiB        one array read from a file (``.npz`` member, pickled array,
                                 tensor in a feature pack)
``archive_bytes``   8 GiB        all the arrays of one ``.npz`` archive together
``pickle_bytes``    8 GiB        a pickle file (it is read into memory whole)
``model_params``    100 million  the parameters a checkpoint's model config asks for
==================  ===========  ==========================================================
"""

from __future__ import annotations

import os

from hotspot_erc.data.dialogue import DataFormatError

DEFAULTS: dict[str, int] = {
    "array_bytes": 2 * 2**30,
    "archive_bytes": 8 * 2**30,
    "pickle_bytes": 8 * 2**30,
    "model_params": 100_000_000,
}


class LimitExceeded(DataFormatError):
    """An input asks for more than a limit allows; nothing of that size was allocated."""


def env_name(name: str) -> str:
    return f"HOTSPOT_ERC_LIMIT_{name.upper()}"


def limit(name: str) -> int:
    """The current value of limit ``name``: its environment variable, else its default."""
    if name not in DEFAULTS:
        raise KeyError(f"unknown limit {name!r}; limits: {', '.join(DEFAULTS)}")
    raw = os.environ.get(env_name(name))
    if raw is None:
        return DEFAULTS[name]
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{env_name(name)}={raw!r}: expected an integer >= 0")
    return value


def check_limit(name: str, value: int, what: str) -> None:
    """Raise :class:`LimitExceeded` if ``value`` is above limit ``name``; ``what`` says where
    the size comes from (``"<file>: field <f>: 3 x 10^12 bytes"`` reads best)."""
    ceiling = limit(name)
    if value > ceiling:
        raise LimitExceeded(f"{what}: {value:,} is above the limit {name} ({ceiling:,}); if this "
                            f"input is genuine, allow it with {env_name(name)}={value}")
