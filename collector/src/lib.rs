//! Shaobing collector library.
