"""Training: recipes and the run record, the model set-up, the Trainer, output dirs, checkpoints and the lineage."""
