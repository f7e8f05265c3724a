"""`python -m ingest`: add files to an index, or delete, list, check and rebuild it."""
from ingest.cli import main

if __name__ == "__main__":
    raise SystemExit(main(lower_priority=True))
