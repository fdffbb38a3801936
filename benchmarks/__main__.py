"""`python -m benchmarks [--quick] [--only NAME] [-o results.json]`."""

from benchmarks.run import main

raise SystemExit(main())
