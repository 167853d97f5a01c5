"""The tutorial: the notebook runner, figures and helpers the notebooks call.
"""
