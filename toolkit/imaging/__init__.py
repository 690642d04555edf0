"""Facial photos: QC, calibration, registration, wrinkle and lift metrics."""
