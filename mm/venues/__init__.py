"""Venue adapters: codecs, signing, transports and clients, one subpackage per venue."""
