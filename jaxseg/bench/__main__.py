"""`python -m jaxseg.bench --config=...`: the step benchmark (`jaxseg.bench.benchmark`)."""
from absl import app

from jaxseg.bench.benchmark import main

if __name__ == '__main__':
  app.run(main)
