//! Desk unit tests: records, commands, rendering and determinism.
