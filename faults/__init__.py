"""The spanchain fault suite: every row injects one real fault and counts where the spans went.

Run the full table with `python -m faults`; `tests/test_reliability_faults.py` runs the fast rows
inside `make test`. See docs/reliability.md.
"""
