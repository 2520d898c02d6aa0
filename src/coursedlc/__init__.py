"""coursedlc: train a course-grade model and ship it as Qualcomm DLC files."""

__version__ = "0.1.0"
