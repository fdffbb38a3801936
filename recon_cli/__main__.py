"""`python -m recon_cli` runs the command-line interface."""

from recon_cli.cli.app import main

if __name__ == "__main__":
    main()
