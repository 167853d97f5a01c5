"""Qwen2.5-VL helpers, the tiny offline model and the checkpoint shipped with the kit.
"""
