//! Runner config JSON (what any operator, a logkit client or a cluster peer sends): accepted
//! or refused with a reason, never a crash. An accepted config survives the store's round
//! trip unchanged (keys lograft keeps but does not act on included), and its ignored keys can
//! be listed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lograft::collect::Allowlist;
use lograft::collect::RunnerConfig;

thread_local! {
    static ALLOWLIST: Allowlist = Allowlist::new(vec!["/var/log/**".into()])
        .unwrap()
        .with_writes(vec!["/var/out/**".into()])
        .unwrap();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        ALLOWLIST.with(|allowlist| {
            if let Ok(config) = RunnerConfig::parse(text, allowlist) {
                let _ = config.ignored_keys();
                let stored = serde_json::to_string(&config).expect("an accepted config serializes");
                let again = RunnerConfig::parse(&stored, allowlist)
                    .expect("a stored config parses again");
                assert_eq!(again, config, "the store's round trip changed {stored}");
            }
        });
    }
});
