"""Document question answering library: types, settings, embedders, store and search.

Never imports streamlit: the same functions serve the CLI, the pages and the tests.
"""
import os

__version__ = "0.1.0"

# Set before torch is first imported (lazily, by the embedder): torch's OpenMP threads then
# sleep between operations instead of spinning for them. On 2 cores the answer's evidence step
# (12 units embedded on two threads) had p50 460 ms idle with spinning and 190 ms without, and
# 480 vs 330 ms with an ingest beside it; ingest's own embedding throughput is the same either
# way (bench/answer_latency.py, issue 10). Set OMP_WAIT_POLICY yourself to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
