"""The loops: the inner loop (adapt and evaluate), ReST-EM (the outer loop) and its M-step (SFT)."""
