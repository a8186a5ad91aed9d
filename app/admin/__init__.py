"""Study administration: create studies, precompute renditions, reader progress, statistics."""
