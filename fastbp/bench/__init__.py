"""`fastbp bench`: fastbp against its peers, timed side by side (see timing.py for the method).

layers.run() covers the public conv/linear suite forward and backward, gemm.run() the GEMM shapes
per CPU path; report.py prints, saves and plots what they return.
"""
from . import gemm, layers, report
from .timing import paired

__all__ = ["gemm", "layers", "report", "paired"]
