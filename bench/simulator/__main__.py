"""`python -m bench.simulator`: see `bench.simulator.cli`."""

from bench.simulator.cli import main

raise SystemExit(main())
