"""Document question answering library: types, settings, embedders, store and search.

Never imports streamlit: the same functions serve the CLI, the pages and the tests.
"""
__version__ = "0.1.0"
