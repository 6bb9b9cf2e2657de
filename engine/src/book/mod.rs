//! L2 order books and Binance depth synchronisation. Being written.
