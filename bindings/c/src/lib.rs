//! edrlink C API (being built).
