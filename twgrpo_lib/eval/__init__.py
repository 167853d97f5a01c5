"""Evaluation: benchmark runs, metrics, re-scoring, the grounding control, checkpoint comparison.
"""
