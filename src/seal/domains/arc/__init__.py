"""The few-shot (ARC) domain: tasks, augmentations, recipes as self-edits, test-time training, voting."""
