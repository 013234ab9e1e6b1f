//! End-to-end tests: the real `puhui` binary, started on a free port with a
//! fresh database per test (a SQLite file; and a fresh PostgreSQL schema when
//! `PUHUI_TEST_POSTGRES_URL` is set), driven over HTTP as the app would.

#[path = "../loadkit/mod.rs"]
mod loadkit;
mod support;

mod api_flow;
mod bad_input;
mod busy;
mod calibration;
mod cli;
mod closed_loop;
mod concurrency;
mod docs_page;
mod drug_course;
mod errors_and_roles;
mod experience;
mod fhir;
mod morbidity;
mod pricing;
mod pricing_bounds;
mod pricing_report;
mod probes;
mod renew;
mod reserve;
