//! Runner config JSON (what any operator, a logkit client or a cluster peer sends): accepted
//! or refused with a reason, never a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lograft::collect::Allowlist;
use lograft::collect::RunnerConfig;

thread_local! {
    static ALLOWLIST: Allowlist = Allowlist::new(vec!["/var/log/**".into()]).unwrap();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        ALLOWLIST.with(|allowlist| {
            let _ = RunnerConfig::parse(text, allowlist);
        });
    }
});
