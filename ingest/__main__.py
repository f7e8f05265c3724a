"""`python -m ingest`: add files to an index, or delete, list, check and rebuild it."""
import os

from ingest.cli import main

# Indexing from the command line is background work: at a lower CPU priority it still gets every
# idle core, and questions asked in the app meanwhile get the cores first (evidence step p50
# 317 -> 263 ms on 2 cores with this ingest beside it, bench/answer_latency.py). The PDF parse
# worker runs at 10 at least (ingest.load.WORKER_NICE). RAG_INGEST_NICE=0 keeps the priority.
INGEST_NICE = int(os.environ.get("RAG_INGEST_NICE", "10"))

if __name__ == "__main__":
    if INGEST_NICE:
        os.nice(INGEST_NICE)
    raise SystemExit(main())
