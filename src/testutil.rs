//! What unit tests share.

/// A deterministic xorshift64 sequence from `seed` (not 0): model and comparison tests draw
/// their random operations from it, so a failure replays.
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
