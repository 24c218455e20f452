"""AdaptSegNet: output-space, multi-level adversarial domain adaptation (Tsai et al., CVPR 2018)."""
