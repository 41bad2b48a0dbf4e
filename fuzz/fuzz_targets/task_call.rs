//! `TASK:ARGS` words. Any text either parses or is refused with a message; a word that parses
//! shows (in labels, `Display`) as a word that parses back to the same call.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rigs::task_call::{is_identifier, Arg, TaskCall};

fuzz_target!(|data: &[u8]| {
    let Ok(word) = std::str::from_utf8(data) else {
        return;
    };
    let call = match TaskCall::parse(word) {
        Ok(call) => call,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(is_identifier(&call.name), "{word:?} -> {call:?}");
    let mut seen_named = false;
    for (i, arg) in call.args.iter().enumerate() {
        match arg {
            Arg::Named(key, _) => {
                assert!(is_identifier(key), "{word:?} -> {call:?}");
                let twice = call.args[..i]
                    .iter()
                    .any(|a| matches!(a, Arg::Named(k, _) if k == key));
                assert!(!twice, "{word:?} names `{key}` twice: {call:?}");
                seen_named = true;
            }
            Arg::Positional(_) => {
                assert!(!seen_named, "{word:?}: positional after named: {call:?}");
            }
        }
    }
    let _ = call.single_value();
    let shown = call.to_string();
    let again = TaskCall::parse(&shown)
        .unwrap_or_else(|e| panic!("{word:?} shows as {shown:?}, which is refused: {e}"));
    assert_eq!(again, call, "{word:?} shows as {shown:?}");
});
