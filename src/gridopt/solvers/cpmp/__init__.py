"""Capacitated single-source p-median: Lagrangian knapsacks, tabu searches, MIPs."""
