"""`python -m app.cli`: the `clientconnect` command."""

from app.cli import main

if __name__ == "__main__":
    main()
