"""Board registry, top-level harnesses, open-toolchain builds and flashing."""
