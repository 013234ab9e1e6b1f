//! Says, in the visible output of `cargo test`, whether the storage and
//! end-to-end tests also run on PostgreSQL. Those tests skip their PostgreSQL
//! pass when `PUHUI_TEST_POSTGRES_URL` is unset, and the notice they print
//! themselves is captured by the test harness; this target runs without the
//! harness, so what it prints is shown.

fn main() {
    match std::env::var("PUHUI_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => {
            println!("PostgreSQL pass: on ({url})");
        }
        _ => println!(
            "notice: PUHUI_TEST_POSTGRES_URL is not set: the storage and end-to-end tests run on \
             SQLite only and skip their PostgreSQL pass \
             (set it, e.g. postgres://postgres@127.0.0.1:5432/test, to run both)"
        ),
    }
}
