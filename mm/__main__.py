"""``python -m mm``: the same command line as the ``mm`` console script."""

from mm.cli import main

raise SystemExit(main())
