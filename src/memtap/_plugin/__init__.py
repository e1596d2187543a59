"""Holds the compiled QEMU plugin (libmemtap.so), built by setup.py."""
