"""Patch victims of the retry tests: scripted services whose calls fail as told."""
