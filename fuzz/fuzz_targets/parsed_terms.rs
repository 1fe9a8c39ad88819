//! The promise parsed-field search rests on (`index::parsed_terms`): when `in_message` vouches
//! for a value, every word the message tokenizer cuts from the value is a word of the message,
//! so the message's postings find every line holding it. Any text, any message.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use lograft::index::parsed_terms::in_message;
use lograft::index::tokenizer::message_analyzer;

fn words(text: &str) -> Vec<String> {
    let mut analyzer = message_analyzer();
    let mut out = Vec::new();
    analyzer
        .token_stream(text)
        .process(&mut |token| out.push(token.text.clone()));
    out
}

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input into a value and the text around it.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (split as usize).min(rest.len());
    let text = String::from_utf8_lossy(&rest[..at]).into_owned();
    let around = String::from_utf8_lossy(&rest[at..]).into_owned();
    // Put the value somewhere in the message most of the time.
    let cut = around
        .char_indices()
        .map(|(i, _)| i)
        .nth(split as usize % 7)
        .unwrap_or(around.len());
    let message = format!("{}{text}{}", &around[..cut], &around[cut..]);
    for (value, line) in [(&text, &message), (&text, &around)] {
        if in_message(value, line) {
            let have: HashSet<String> = words(line).into_iter().collect();
            for word in words(value) {
                assert!(have.contains(&word), "{word:?} of {value:?} is not a word of {line:?}");
            }
        }
    }
});
