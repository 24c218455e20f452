"""DeepLab v2: dilated ResNet + ASPP (summed branches), multi-scale input fusion (MSC)."""
