"""The domains: knowledge incorporation (passages) and few-shot learning (ARC), and the shapes the loops see."""
