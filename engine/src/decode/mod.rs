//! Binance market-data decoders (simd-json). Being written.
