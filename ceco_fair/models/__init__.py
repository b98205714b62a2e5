"""Encoders and projection heads (``encoders``), and encoder files in and out (``files``)."""
