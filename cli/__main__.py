"""`python -m cli`: the operator's command line (see `cli.main`)."""

import sys

from cli.main import main

sys.exit(main())
