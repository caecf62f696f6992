//! edrlink wasm bindings (being built).
