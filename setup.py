"""jaxseg: JAX/Flax dense-prediction research codebase (DeepLab v2, PSPNet, PAD-Net, CTKT, AdaptSegNet)."""
from setuptools import find_packages, setup

setup(
    name="jaxseg",
    version="0.1.0",
    description="Functional JAX/Flax codebase for dense prediction research.",
    packages=find_packages(include=["jaxseg", "jaxseg.*"]),
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.10",
        "flax>=0.12",
        "optax>=0.2.5",
        "orbax-checkpoint>=0.12",
        "tensorflow-datasets>=4.9.10",
        "importlib_resources",  # tfds 4.9.10 imports it without declaring it
        "ml-collections",
        "chex",
        "absl-py",
        "numpy",
        "grain>=0.2.10",  # deterministic, checkpointable input pipeline
        "pillow",  # PNG/JPEG decoding and prediction images
        "h5py",  # NYUv2 MATLAB v7.3 files
        "scipy",  # MATLAB v5 files (splits.mat, classMapping40.mat)
        "tensorboardX",  # TensorBoard event files without TensorFlow
        "dm-pix",  # SSIM for CTKT's DENet loss
    ],
    extras_require={
        # import-linter: the layer contract (tests/test_layers.py); hypothesis: decoder fuzzing;
        # pydensecrf2: the reference CRF (builds from source, ~40 s the first time).
        "test": ["pytest", "pytest-xdist", "hdf5storage", "import-linter", "hypothesis",
                 "pydensecrf2"],
        "torch": ["torch"],
    },
)
