"""`python -m embedforge` is the CLI, so `torchrun -m embedforge ...` works."""

from embedforge.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
