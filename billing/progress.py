"""How long-running rules report progress: a callback taking a whole percent and a short message."""
from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, str], None]
