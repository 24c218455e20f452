"""Benchmarks (commands, never tests): `python -m jaxseg.bench` (train / inference steps of any
config, PyTorch references side by side), `jaxseg.bench.conv`, `jaxseg.bench.pipeline`."""
