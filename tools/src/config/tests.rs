//! The schema's defaults, validation messages and docs/config.md, checked together.

use std::path::PathBuf;

use super::*;

#[test]
fn empty_file_is_all_defaults() {
    let c: Config = toml::from_str("").unwrap();
    assert_eq!(c, Config::default());
    c.validate().unwrap();
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let e = toml::from_str::<Config>("[server]\nlisten_addr = \"x\"\n").unwrap_err();
    assert!(e.to_string().contains("listen_addr"), "{e}");
    let c: Config = toml::from_str("[server]\nlisten = \"nope\"\n").unwrap();
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("server.listen"));
    let c: Config = toml::from_str("[engine]\nidle = \"spin\"\n[feed]\nspeed = 0\n").unwrap();
    assert_eq!(c.engine.idle, Idle::Spin);
    assert_eq!(c.feed.speed, 0);
    assert!(toml::from_str::<Config>("[engine]\nidle = \"nap\"\n").is_err());
}

#[test]
fn example_configs_load_and_are_live() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for (file, venues) in [("live.toml", 2), ("sim.toml", 3)] {
        let c = Config::load(&dir.join(file)).unwrap();
        assert_eq!(c.venues.len(), venues, "{file}");
        assert_eq!(c.feed_kind(), FeedKind::Live, "{file}");
        // Today's endpoints: nothing to rewrite.
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let mut raw: Config = toml::from_str(&text).unwrap();
        assert_eq!(raw.rewrite_legacy_urls(), Vec::<String>::new(), "{file}");
    }
    let c = Config::load(&dir.join("desk.toml")).unwrap();
    let setup = c.desk_setup().unwrap().unwrap();
    assert_eq!(setup.users, ["alice", "bob", "signals", "dashboard"]);
    assert_eq!(setup.max_open_orders, Some(50));
    assert_eq!(c.users[3].max_connections, 20);
}

/// The testnet examples load (credentials are read only when the node starts, so none are
/// needed here), send their orders to the testnet's WebSocket API, and are dry runs.
#[test]
fn testnet_examples_load_as_dry_runs_against_the_testnets() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for (file, market, api) in [
        (
            "testnet-spot.toml",
            tape_core::instrument::Market::Spot,
            "wss://ws-api.testnet.binance.vision/ws-api/v3",
        ),
        (
            "testnet-usdm.toml",
            tape_core::instrument::Market::UsdM,
            "wss://testnet.binancefuture.com/ws-fapi/v1",
        ),
    ] {
        let c = Config::load(&dir.join(file)).unwrap();
        assert_eq!(c.feed_kind(), FeedKind::Live, "{file}");
        assert_eq!(c.venues.len(), 1, "{file}");
        assert_eq!(c.desk.gateway_url, api, "{file}");
        let setup = c.desk_setup().unwrap().unwrap();
        assert_eq!(setup.users, ["trader"], "{file}");
        assert_eq!(setup.gateway, Some(market), "{file}");
        assert!(
            setup.dry_run,
            "{file}: a first session must not send orders"
        );
        assert!(c.desk.dry_run().unwrap(), "{file}");
        assert!(c.desk.cancel_on_shutdown, "{file}");
        assert!(!c.desk.api_key_env.is_empty(), "{file}");
        assert!(!c.desk.ed25519_key_file.is_empty(), "{file}");
        // A gateway needs its request timeout: 0 would let unanswered requests pile up.
        let mut no_timeout = c.clone();
        no_timeout.desk.request_timeout_ms = 0;
        let e = no_timeout.validate().unwrap_err().to_string();
        assert!(e.contains("request_timeout_ms"), "{file}: {e}");
    }
    // The USD-M testnet's user-data host is not derived from its API host: it is named.
    let c = Config::load(&dir.join("testnet-usdm.toml")).unwrap();
    assert_eq!(crate::run::derive_user_data_url(&c.desk.gateway_url), None);
    assert_eq!(
        c.desk.user_data_url,
        "wss://fstream.binancefuture.com/private/ws"
    );
}

/// With a key in the place the example names (a fresh Ed25519 key here, and the API key from
/// a file instead of the environment), the gateway settings the node starts with sign with
/// Ed25519, read USD-M user data on the testnet's /private stream, and stay a dry run.
#[test]
fn testnet_example_with_a_key_makes_an_ed25519_dry_run_gateway() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let tmp = tempfile::tempdir().unwrap();
    let pem = tmp.path().join("testnet-usdm.pem");
    let key = tape_core::sign::Ed25519Key::from_seed(&[7; 32]);
    std::fs::write(&pem, key.to_pkcs8_pem().as_bytes()).unwrap();
    let api = tmp.path().join("api-key");
    std::fs::write(&api, "testnetApiKey123\n").unwrap();
    let mut c = Config::load(&dir.join("testnet-usdm.toml")).unwrap();
    c.desk.ed25519_key_file = pem.display().to_string();
    c.desk.api_key_env.clear();
    c.desk.api_key_file = api.display().to_string();
    let g = crate::run::gateway_options(&c).unwrap();
    let creds = g.credentials.expect("credentials");
    assert_eq!(creds.kind(), tape_core::sign::KeyKind::Ed25519);
    assert_eq!(
        g.user_data_url.as_deref(),
        Some("wss://fstream.binancefuture.com/private/ws")
    );
    assert!(g.dry_run);
    assert!(g.cancel_on_shutdown);
    // Without the key file the node refuses to start, naming the key, never a value.
    c.desk.ed25519_key_file = tmp.path().join("missing.pem").display().to_string();
    let e = format!("{:#}", crate::run::gateway_options(&c).unwrap_err());
    assert!(e.contains("desk.ed25519_key_file"), "{e}");
    assert!(!e.contains("testnetApiKey123"), "{e}");
}

#[test]
fn desk_and_user_mistakes_are_named() {
    let user = "[[user]]\nname = \"a\"\nroles = [\"trader\"]\n";
    for (extra, needle) in [
        ("[desk]\nmax_order_qty = \"x\"\n", "max_order_qty"),
        ("[desk]\nmark = \"vwap\"\n", "mark"),
        ("[[user]]\nname = \"b\"\nroles = [\"god\"]\n", "god"),
        ("[[user]]\nname = \"a\"\nroles = []\n", "duplicate"),
    ] {
        let c: Config = toml::from_str(&format!("{user}{extra}")).unwrap();
        let e = format!("{:#}", c.validate().unwrap_err());
        assert!(e.contains(needle), "{extra}: {e}");
    }
    // No secret anywhere: named when the node is configured.
    let mut c: Config = toml::from_str(user).unwrap();
    c.auth.secret_env = "TAPE_TEST_SURELY_UNSET_VARIABLE".into();
    let e = format!("{:#}", c.auth_config().unwrap_err());
    assert!(e.contains("TAPE_TEST_SURELY_UNSET_VARIABLE"), "{e}");
}

/// A value can never turn into another desk key: the desk setup is built field by field, not
/// by writing and re-reading `key=value` text (where a newline in a user name injected keys).
#[test]
fn a_user_name_cannot_inject_desk_keys() {
    let c: Config = toml::from_str(
        "[[user]]\nname = \"a\\nmark=last\\nmaker_fee_bps=-999\"\nroles = [\"trader\"]\n",
    )
    .unwrap();
    match c.desk_setup() {
        Ok(Some(setup)) => {
            assert_eq!(setup.users, ["a\nmark=last\nmaker_fee_bps=-999"]);
            assert_eq!(setup, {
                let mut d = c.clone();
                d.users[0].name = "x".into();
                let mut s = d.desk_setup().unwrap().unwrap();
                s.users = setup.users.clone();
                s
            });
        }
        Ok(None) => panic!("a user is configured"),
        Err(e) => assert!(format!("{e:#}").contains("user"), "{e:#}"),
    }
}

#[test]
fn venue_and_sim_mistakes_are_named() {
    let base = "[[venue]]\nname = \"a\"\nmarket = \"usdm\"\nws_url = \"wss://h/stream\"\nrest_url = \"https://h\"\nsymbols = [\"BTCUSDT\"]\n";
    let ok: Config = toml::from_str(base).unwrap();
    ok.validate().unwrap();
    assert_eq!(ok.venues[0].streams, default_streams());
    for (extra, needle) in [
        ("streams = [\"kline_1m\"]\n", "unknown stream"),
        ("snapshot_limit = 1\n", "snapshot_limit"),
        ("scales = { ETHUSDT = [2, 3] }\n", "scales.ETHUSDT"),
    ] {
        let c: Config = toml::from_str(&format!("{base}{extra}")).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(needle), "{extra}: {e}");
    }
    let two = format!("{base}{base}");
    let c: Config = toml::from_str(&two).unwrap();
    assert!(c.validate().unwrap_err().to_string().contains("unique"));
    let c: Config = toml::from_str(&base.replace("wss://h/stream", "https://h/stream")).unwrap();
    assert!(c.validate().unwrap_err().to_string().contains("ws_url"));
    let c: Config = toml::from_str(&base.replace("usdm", "options")).unwrap();
    assert!(c.validate().unwrap_err().to_string().contains("market"));
    let c: Config = toml::from_str("[sim]\nfaults = [\"explode@3\"]\n").unwrap();
    assert!(c.validate().unwrap_err().to_string().contains("sim.faults"));
    let c: Config = toml::from_str("[feed]\nsource = \"live\"\n").unwrap();
    assert!(c.validate().unwrap_err().to_string().contains("[[venue]]"));
    let c: Config = toml::from_str("[live]\nreconnect_initial_ms = 0\n").unwrap();
    assert!(c.validate().is_err());
    assert_eq!(Config::default().feed_kind(), FeedKind::Sim);
}

/// Every key in docs/config.md's tables exists with the documented default, and every
/// key of the config is documented.
#[test]
fn config_reference_matches_defaults() {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md"),
    )
    .unwrap();
    let defaults = toml::Value::try_from(Config::default()).unwrap();
    let mut documented = 0;
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') || !cells[1].contains('.') {
            continue;
        }
        let key = cells[1].trim_matches('`');
        let default = cells[2].trim_matches('`');
        let (section, name) = key.split_once('.').unwrap();
        let v = defaults
            .get(section)
            .and_then(|s| s.get(name))
            .unwrap_or_else(|| panic!("docs/config.md documents unknown key {key}"));
        let shown = match v {
            toml::Value::String(s) => format!("\"{s}\""),
            other => other.to_string(),
        };
        assert_eq!(shown, default, "default of {key}");
        documented += 1;
    }
    let total: usize = defaults
        .as_table()
        .unwrap()
        .values()
        .map(|s| s.as_table().unwrap().len())
        .sum();
    assert_eq!(documented, total, "every key is documented");
}

const USDM: &str = "[[venue]]\nname = \"f\"\nmarket = \"usdm\"\nrest_url = \"https://h\"\nsymbols = [\"BTCUSDT\"]\nstreams = [\"depth@100ms\", \"aggTrade\", \"ticker\"]\n";

#[test]
fn legacy_usdm_urls_are_rewritten_with_a_warning() {
    for legacy in ["wss://h:9/stream", "wss://h:9/ws", "wss://h:9/stream/"] {
        let mut c: Config = toml::from_str(&format!("{USDM}ws_url = \"{legacy}\"\n")).unwrap();
        c.validate().unwrap();
        let w = c.rewrite_legacy_urls();
        assert_eq!(c.venues[0].ws_url, "wss://h:9", "{legacy}");
        assert_eq!(w.len(), 1, "{legacy}");
        assert!(w[0].contains("write ws_url = \"wss://h:9\""), "{}", w[0]);
        // The engine gets the routed connections.
        let conns = crate::run::venue_specs(&c)[0].connections();
        let urls: Vec<&str> = conns.iter().map(|c| c.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "wss://h:9/public/stream?streams=btcusdt@depth@100ms",
                "wss://h:9/market/stream?streams=btcusdt@aggTrade/btcusdt@ticker"
            ]
        );
    }
    // A routed base, and other markets' /stream endpoints, are left alone.
    let mut c: Config = toml::from_str(&format!("{USDM}ws_url = \"wss://h:9\"\n")).unwrap();
    c.validate().unwrap();
    assert!(c.rewrite_legacy_urls().is_empty());
    let spot = USDM.replace("usdm", "spot") + "ws_url = \"wss://h:9/stream\"\n";
    let mut c: Config = toml::from_str(&spot).unwrap();
    c.validate().unwrap();
    assert!(c.rewrite_legacy_urls().is_empty());
    assert_eq!(c.venues[0].ws_url, "wss://h:9/stream");
    let spec = &crate::run::venue_specs(&c)[0];
    assert_eq!(spec.routes, None);
    assert_eq!(spec.connections().len(), 1);
}

#[test]
fn usdm_routes_override_and_refusals() {
    let c: Config = toml::from_str(&format!(
        "{USDM}ws_url = \"wss://h\"\nroutes = {{ aggTrade = \"public\" }}\n"
    ))
    .unwrap();
    c.validate().unwrap();
    let conns = crate::run::venue_specs(&c)[0].connections();
    assert_eq!(
        conns[0].url,
        "wss://h/public/stream?streams=btcusdt@depth@100ms/btcusdt@aggTrade"
    );
    assert_eq!(conns[1].url, "wss://h/market/stream?streams=btcusdt@ticker");
    for (extra, needle) in [
        (
            "ws_url = \"wss://h/public/stream\"\n",
            "write ws_url = \"wss://h\"",
        ),
        ("ws_url = \"wss://h/market\"\n", "names one endpoint class"),
        (
            "ws_url = \"wss://h\"\nroutes = { kline = \"market\" }\n",
            "routes.kline: not a stream kind",
        ),
        (
            "ws_url = \"wss://h\"\nroutes = { trade = \"private\" }\n",
            "routes.trade: \"private\" is neither",
        ),
    ] {
        let c: Config = toml::from_str(&format!("{USDM}{extra}")).unwrap();
        let e = format!("{:#}", c.validate().unwrap_err());
        assert!(e.contains(needle), "{extra}: {e}");
    }
    let spot = USDM.replace("usdm", "spot")
        + "ws_url = \"wss://h/stream\"\nroutes = { trade = \"public\" }\n";
    let c: Config = toml::from_str(&spot).unwrap();
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("only a usdm venue"), "{e}");
}

#[test]
fn shm_is_off_by_default_and_its_settings_are_checked_by_key() {
    let c = Config::default();
    assert!(c.shm_config().unwrap().is_none(), "off unless enabled");
    assert_eq!(c.shm.dir, "/dev/shm/tape");

    let c: Config = toml::from_str(
        "[shm]\nenabled = true\ndir = \"/tmp/x\"\nlevels = 5\nuser_mode = \"0640\"\nuser_group = \"0\"\n\
         [[user]]\nname = \"alice\"\nroles = [\"trader\"]\nshm_group = \"12345\"\n\
         [[user]]\nname = \"bob\"\nroles = [\"trader\"]\n[auth]\nsecret = \"0123456789abcdef0123456789abcdef\"\n",
    )
    .unwrap();
    c.validate().unwrap();
    let s = c.shm_config().unwrap().unwrap();
    assert_eq!(s.dir, std::path::PathBuf::from("/tmp/x"));
    assert_eq!(s.market.levels, 5);
    assert_eq!(s.market.mode, 0o644);
    assert_eq!((s.user.mode, s.user.group), (0o640, Some(0)));
    assert_eq!(s.user_groups, vec![("alice".to_owned(), 12345)]);

    for (text, needle) in [
        ("levels = 0", "shm.levels must be 1 to 1000, not 0"),
        ("levels = 1001", "shm.levels"),
        ("max_instruments = 0", "shm.max_instruments"),
        ("max_orders = 0", "shm.max_orders"),
        ("market_mode = \"rw\"", "shm.market_mode"),
        (
            "market_mode = \"0666\"",
            "must not let other accounts write",
        ),
        ("user_mode = \"0644\"", "every OS account"),
        ("user_mode = \"0700\"", "executable"),
        (
            "user_group = \"no-such-group-here\"",
            "shm.user_group: no group",
        ),
        ("dir = \"\"", "shm.dir"),
    ] {
        let c: Config = toml::from_str(&format!("[shm]\nenabled = true\n{text}\n")).unwrap();
        let e = format!("{:#}", c.validate().unwrap_err());
        assert!(e.contains(needle), "{text}: {e}");
    }
    assert!(
        toml::from_str::<Config>("[shm]\nlevel = 3\n").is_err(),
        "unknown key"
    );

    // `--shm DIR` turns it on.
    let c = crate::run::resolve(&crate::run::RunArgs {
        node: crate::run::NodeArgs {
            shm: Some("/dev/shm/elsewhere".into()),
            ..crate::run::NodeArgs::default()
        },
        ..crate::run::RunArgs::default()
    })
    .unwrap();
    assert!(c.shm.enabled);
    assert_eq!(c.shm.dir, "/dev/shm/elsewhere");
}

#[test]
fn replay_journals_are_names_and_directories() {
    let ok: Config = toml::from_str(
        "[replay]\njournals = [{ name = \"day-1\", dir = \"/var/tape/j\" }]\nmax_sessions = 2\n",
    )
    .unwrap();
    ok.validate().unwrap();
    let r = ok.replay.config().unwrap();
    assert_eq!(r.journals, [("day-1".to_owned(), "/var/tape/j".into())]);
    assert_eq!((r.max_sessions, r.public, r.nice), (2, false, 19));
    assert!(
        Config::default().replay.config().is_none(),
        "off by default"
    );
    for bad in [
        "journals = [{ name = \"../x\", dir = \"/d\" }]",
        "journals = [{ name = \"a/b\", dir = \"/d\" }]",
        "journals = [{ name = \".a\", dir = \"/d\" }]",
        "journals = [{ name = \"a\", dir = \"\" }]",
        "journals = [{ name = \"a\", dir = \"/d\" }, { name = \"a\", dir = \"/e\" }]",
        "journals = [{ name = \"a\", dir = \"/d\" }]\nmax_sessions = 0",
        "nice = 20",
    ] {
        let c: Config = toml::from_str(&format!("[replay]\n{bad}\n")).unwrap();
        assert!(c.validate().is_err(), "{bad}");
    }
    assert!(
        toml::from_str::<Config>("[replay]\njournals = [{ name = \"a\", path = \"/d\" }]\n")
            .is_err()
    );
}

/// The origin and edge configs of docs/scale-out.md load and validate as written.
#[test]
fn scale_out_examples_validate() {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/scale-out.md"),
    )
    .unwrap();
    let blocks: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 2, "an origin and an edge config");
    let origin: Config = toml::from_str(blocks[0]).unwrap();
    origin.validate().unwrap();
    assert!(origin.nats.enabled);
    assert_eq!(origin.feed_kind(), FeedKind::Live);
    let edge: Config = toml::from_str(blocks[1]).unwrap();
    edge.validate().unwrap();
    assert_eq!(edge.feed_kind(), FeedKind::Nats);
    assert_eq!(edge.nats.url, origin.nats.url);
}

#[test]
fn nats_settings_are_checked() {
    let mut c = Config::default();
    c.nats.enabled = true;
    c.feed.journal = "fixtures/session".into();
    let e = c.validate().unwrap_err();
    assert!(format!("{e:#}").contains("feed.loop"), "{e:#}");
    c.feed.repeat = false;
    c.validate().unwrap();
    let mut edge = Config::default();
    edge.feed.source = FeedKind::Nats;
    edge.validate().unwrap();
    edge.nats.edge_id = 0;
    assert!(format!("{:#}", edge.validate().unwrap_err()).contains("edge_id"));
    edge.nats.edge_id = 1;
    edge.nats.subject = "tape.>".into();
    assert!(format!("{:#}", edge.validate().unwrap_err()).contains("nats.subject"));
}
