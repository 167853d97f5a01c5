"""Experiments built from training and evaluation: the ablation grid and its report.
"""
