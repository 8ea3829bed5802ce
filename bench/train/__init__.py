"""bench train: contrastive pre-training of the tiny CLIP (and, later, adversarial fine-tuning)."""
