"""The paper's ideas as pure functions: answers, rewards, prompts, QA inversion, token weights.

Imports nothing else of the kit.
"""
