"""Uncapacitated p-median: local search, Lagrangian bounds, Elloumi MIP."""
