"""`python -m api` is `sovd-hub`."""

import sys

from api.cli import main

sys.exit(main())
