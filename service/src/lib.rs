//! edrlink reference service (being built).
