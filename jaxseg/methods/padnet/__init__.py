"""PAD-Net: multi-task depth + scene parsing with multi-modal distillation (modules A/B/C)."""
