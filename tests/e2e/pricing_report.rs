//! The pricing report page: written by `puhui price --html`, served for a
//! stored run by `GET /v1/pricing/runs/{id}/report.html`, and rendered by a
//! browser without a network.

use std::path::Path;
use std::process::Command;

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Two groups, a risk factor, a sweep and adverse selection: every chart.
const SCENARIO: &str = r#"
name = "Report city"
seed = 5
simulations = 2000

[benefits.inpatient]
deductible = 20000
coinsurance = 0.8
coinsurance_preexisting = 0.5
annual_limit = 1000000

[[groups]]
id = "young"
members = 20000
take_up = 0.3
take_up_elasticity = 1.0
inpatient.frequency = { distribution = "poisson", mean = 0.06 }
inpatient.severity = { distribution = "lognormal", mean = 25000, cv = 1.5 }

[[groups]]
id = "old"
members = 6000
preexisting = true
take_up = 0.5
take_up_elasticity = 0.2
inpatient.frequency = { distribution = "poisson", mean = 0.35 }
inpatient.severity = { distribution = "lognormal", mean = 30000, cv = 1.5 }

[[risk_factors]]
id = "morbidity_trend"
applies_to = ["inpatient.frequency"]
distribution = { distribution = "gamma", mean = 1.0, cv = 0.10 }

[pricing]
expense_ratio = 0.10
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.995

[sweep]
simulations = 1000
inpatient.deductible = [10000, 20000]
inpatient.coinsurance = [0.7, 0.8]

[adverse_selection]
max_premium = 2000
renewal_years = 3
"#;

fn price_to_html(dir: &Path, scenario: &str, html: &Path) -> std::process::Output {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, scenario).unwrap();
    Command::new(BIN)
        .args(["price", file.to_str().unwrap(), "--quiet", "--html"])
        .arg(html)
        .output()
        .unwrap()
}

/// Pixels of the PNG that are not white.
fn ink(png_file: &Path) -> (usize, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_file).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let inked = pixels
        .chunks(channels)
        .filter(|px| px.iter().take(3).any(|&c| c < 200))
        .count();
    (inked, pixels.len() / channels)
}

#[test]
fn the_report_page_is_written_and_renders_offline() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let out = price_to_html(dir.path(), SCENARIO, &html);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<svg").count(), 7, "one chart per section");
    let stripped = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!stripped.contains("http://") && !stripped.contains("https://"));
    assert!(!page.contains("<script"));

    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "notice: {CHROMIUM} is absent (apt-get install chromium; .ci/run installs it); \
             the report rendering test is skipped"
        );
        return;
    }
    let shot = dir.path().join("report.png");
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1200,3000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("chromium-profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success() && shot.exists(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (inked, total) = ink(&shot);
    // Headings, tables, axes, curves and bars: a blank or unstyled page has
    // next to none.
    assert!(
        inked * 100 > total,
        "{inked} of {total} pixels are not white"
    );
}

#[test]
fn an_unwritable_html_path_fails_before_the_pricing_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    for target in [
        dir.path().join("no-such-dir").join("r.html"),
        dir.path().to_path_buf(),
    ] {
        let out = price_to_html(dir.path(), SCENARIO, &target);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&target.display().to_string()), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        // Nothing priced: no report on stdout.
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn the_api_serves_a_runs_report_to_its_readers() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("cli.html");
    let out = price_to_html(dir.path(), SCENARIO, &html);
    assert!(out.status.success());
    let cli_page = std::fs::read_to_string(&html).unwrap();
    for db in databases(dir.path()) {
        let server = Server::start(&db, dir.path(), &[]);
        let (status, accepted) = server.post_raw(
            "/v1/pricing/runs",
            Some(&server.insurer),
            None,
            "application/toml",
            SCENARIO.as_bytes(),
        );
        assert_eq!(status, 202, "{accepted}");
        let id = accepted["id"].as_i64().unwrap();
        let path = format!("/v1/pricing/runs/{id}/report.html");
        // Before it has succeeded there is nothing to draw.
        let (status, _, body) = server.get_text(&path, Some(&server.insurer));
        if status != 200 {
            assert_eq!(status, 409, "{}: {body}", server.backend);
            assert!(body.contains("running"), "{body}");
        }
        let started = std::time::Instant::now();
        while server
            .get(&format!("/v1/pricing/runs/{id}"), Some(&server.insurer))
            .1["status"]
            == "running"
        {
            assert!(started.elapsed().as_secs() < 300, "the run did not finish");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        for reader in [&server.insurer, &server.auditor] {
            let (status, content_type, page) = server.get_text(&path, Some(reader));
            assert_eq!(status, 200, "{}: {page}", server.backend);
            assert!(content_type.starts_with("text/html"), "{content_type}");
            // The same page as the command line's for the same scenario.
            assert_eq!(page, cli_page, "{}", server.backend);
        }
        let (_, enrollee) = server.enrol(1, &[]);
        assert_eq!(server.get_text(&path, Some(&enrollee)).0, 403);
        assert_eq!(server.get_text(&path, None).0, 401);
        let (status, _, body) =
            server.get_text("/v1/pricing/runs/999999/report.html", Some(&server.insurer));
        assert_eq!(status, 404, "{body}");
    }
}
