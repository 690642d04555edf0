"""Bench instruments: stimulator and oscilloscope drivers over PyVISA, the digital twin, waveform measures.

This package knows SCPI and electricity, and nothing about studies, subjects or databases.
"""

__all__: list[str] = []
