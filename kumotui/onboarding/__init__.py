"""Guided first-time setup, as core: what a host has, the steps, first-run defaults, the summary.

The app's guide screen renders and dispatches; everything it decides or runs is here.
"""
