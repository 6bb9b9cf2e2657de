//! Arbitrary bytes as `tape.toml`, through what `Config::load` does after reading the file
//! (UTF-8, `toml::from_str`, `validate`), then the derived settings `tape run` asks for.
//!
//! Properties: no panic; a config that loads re-serializes to TOML that loads back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tape_tools::config::Config;

fuzz_target!(|data: &[u8]| {
    // `Config::load` reads with `read_to_string`: anything else fails before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = toml::from_str::<Config>(text) else {
        return;
    };
    if cfg.validate().is_err() {
        return;
    }
    let _ = cfg.desk_setup();
    let _ = cfg.auth_config();
    let _ = cfg.feed_kind();
    let _ = cfg.journal_path();
    // NaN is a valid TOML float and never equal to itself: nothing to compare then.
    #[allow(clippy::eq_op)]
    if cfg == cfg {
        let again = toml::to_string(&cfg).expect("a loaded config serializes");
        let back: Config = toml::from_str(&again)
            .unwrap_or_else(|e| panic!("re-serialized config does not parse: {e}\n{again}"));
        assert_eq!(
            back, cfg,
            "config changed across a TOML round trip:\n{again}"
        );
    }
});
