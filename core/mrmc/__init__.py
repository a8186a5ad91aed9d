"""Multi-reader multi-case (MRMC) ROC analysis, independent of the study engine.

``load_ratings_csv`` reads any ``reader,treatment,case,truth,rating`` table; ``analyze``
runs the Obuchowski-Rockette analysis (Hillis' degrees of freedom) on it. The study's
diagnosis kind and ``r2c-review mrmc analyze`` both call this code.
"""

from core.mrmc.obuchowski_rockette import MrmcResult, analyze
from core.mrmc.ratings import RatingsTable, load_ratings_csv, ratings_from_records

__all__ = ["MrmcResult", "RatingsTable", "analyze", "load_ratings_csv", "ratings_from_records"]
