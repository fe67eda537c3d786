"""`python -m ferlab` (and `torchrun -m ferlab`) runs the CLI."""

from ferlab.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
