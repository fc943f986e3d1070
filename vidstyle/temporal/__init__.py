"""Optical flow, warping, occlusion masks and temporal filtering of stylized frames."""
