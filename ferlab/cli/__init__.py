"""Thin command-line front end: each command module parses flags and calls the library."""
