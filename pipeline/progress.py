"""Progress bars that read well in a terminal and in a log.

On a terminal, a tqdm bar. In a log (stderr redirected: `dvc repro > log`, CI), no bar at
all, since every carriage-return redraw would pile up in the file; the stages log a
summary line when they finish instead.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def bar(*args: Any, **kwargs: Any) -> tqdm:
    return tqdm(*args, disable=not sys.stderr.isatty(), mininterval=0.5, **kwargs)
