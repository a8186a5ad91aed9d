"""Blinded reader mode: the MD preference study, one case at a time, panes unlabeled."""
