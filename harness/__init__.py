"""kexp harness: build the patched v6.12 kernel, boot it under QEMU, run scenarios."""

__version__ = "0.1.0"
