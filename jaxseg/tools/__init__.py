"""Command-line helpers that drive `python -m jaxseg.main` (ablations, sweeps)."""
