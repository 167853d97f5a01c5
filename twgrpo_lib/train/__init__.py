"""Training: the TW-GRPO trainer on TRL, ``twgrpo train`` runs and recipes, the supervised stages.
"""
