"""`python -m server`: the same as `reelscribe server`."""

from reelscribe.cli.main import main

if __name__ == "__main__":
    main(["server"])
