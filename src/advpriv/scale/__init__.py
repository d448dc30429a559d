"""Protection beyond one process: `advpriv batch` runs `advpriv protect`'s per-file pipeline on Ray Data.

Ray is an optional extra (`pip install 'advpriv[scale]'`), imported only when `advpriv batch` runs.
"""
