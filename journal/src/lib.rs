//! The journal. Being written.
