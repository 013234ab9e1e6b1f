//! The scenario parser on arbitrary text, as TOML and as JSON: it returns a
//! scenario or a typed error, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = actuarial::Scenario::from_toml_str(text, "fuzz.toml", &actuarial::NoTables);
    let _ = actuarial::Scenario::from_json_str(text, "fuzz.json", &actuarial::NoTables);
});
