"""The Hub: the model card and publishing a run."""
