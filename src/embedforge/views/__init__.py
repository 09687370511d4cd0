"""Augmentations that make views of sets and images, batched on tensors."""
