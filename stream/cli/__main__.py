"""``python -m stream.cli``: the ``semstream`` command."""

import sys

from stream.cli import main

sys.exit(main())
