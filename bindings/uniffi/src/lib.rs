//! edrlink uniffi bindings (being built).
