//! Helpers shared by the end-to-end tests: spawning the real binaries, waiting, querying stores.
