"""`python -m sovd_hub` is `sovd-hub`."""

import sys

from sovd_hub.cli import main

sys.exit(main())
