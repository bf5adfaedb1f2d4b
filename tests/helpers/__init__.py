"""Helpers the tests share: generated media, test doubles, a tiny training set."""
