"""Data: benchmark file formats, video decoding, the predictions store, mini-CLEVRER.

Imports only ``twgrpo_lib.core``.
"""
