"""Constitutions: the persona a model is trained to have, as first-person traits.

Load one by built-in name or path with :func:`load_constitution`, parse in-memory content with
:func:`parse_constitution`, and check its wording with :func:`lint` before spending compute on it.

>>> from opencharacter.constitution import Constitution, Trait
>>> c = Constitution(name="calm", traits=[Trait(text="I stay calm when others panic.")])
>>> c.numbered_traits()
'1. I stay calm when others panic.'
"""

from opencharacter.constitution._lint import LintWarning, lint
from opencharacter.constitution._model import Constitution, Trait
from opencharacter.constitution._readers import (
    FORMATS,
    builtin_names,
    load_constitution,
    parse_constitution,
)

__all__ = [
    "FORMATS",
    "Constitution",
    "LintWarning",
    "Trait",
    "builtin_names",
    "lint",
    "load_constitution",
    "parse_constitution",
]
