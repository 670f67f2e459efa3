"""``english.csv`` datasets: the format, validation before training, batches, and training-time augmentation."""
