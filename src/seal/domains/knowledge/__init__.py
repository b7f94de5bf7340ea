"""The knowledge-incorporation domain: passages, self-edit prompts, graders."""
