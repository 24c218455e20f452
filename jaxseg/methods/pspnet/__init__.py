"""PSPNet: deep-stem dilated ResNet, Pyramid Pooling Module, auxiliary head on layer3."""
