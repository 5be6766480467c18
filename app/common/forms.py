"""Form helpers shared by every blueprint's ``forms.py``."""
from __future__ import annotations

from wtforms.fields import SelectChoice


def choices(pairs) -> list[SelectChoice]:
    """``(value, label)`` pairs as the option objects WTForms 3.3+ wants (tuples are deprecated)."""
    return [SelectChoice(value, label) for value, label in pairs]
