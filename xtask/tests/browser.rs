//! The HTML viewer as a person sees it: a real headless Chromium (Debian's `chromium`,
//! installed by `.ci/run`) loads the page `view --html` writes for a minimized Dirty COW
//! trace, the "jump to the violation" link has its target, clicking an object lights up
//! exactly the events that touch it, and nothing on the page points off the page.
//! Budget: 2,000 PCT executions of dirty-cow on v4.8, seed 0.

use std::path::Path;
use std::process::Command;

fn xtask(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("xtask runs")
}

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

#[test]
fn the_html_page_works_in_a_headless_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "Chromium is missing: .ci/run installs Debian's chromium package"
        );
        eprintln!("SKIPPED: no Chromium here (apt-get install chromium); CI installs it and runs this test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let o = xtask(
        &[
            "check",
            "dirty-cow",
            "--era",
            "v4.8",
            "--budget",
            "2000",
            "-q",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let trace = v["violations"][0]["trace"].as_str().unwrap().to_string();
    assert_eq!(
        xtask(&["minimize", &trace], dir.path()).status.code(),
        Some(0)
    );
    let page = dir.path().join("page.html");
    let o = xtask(
        &["view", &trace, "--html", page.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();

    // Self-contained: no reference leaves the page.
    for bad in ["http://", "https://", "<link", "@import", "src=\""] {
        assert!(!html.contains(bad), "the page refers to `{bad}`");
    }
    assert!(html.contains("href=\"#violation\""));
    assert!(
        html.contains("<h2>minimized</h2>"),
        "the minimized schedule is beside the original"
    );
    assert!(html.contains("scenario dirty-cow"));

    // In the browser: click the first object of the violation and read what lit up.
    let probe = r#"<script>
var li = document.querySelector('li[data-key]');
var key = li.getAttribute('data-key');
li.click();
var steps = function (rows) { return Array.from(rows).map(function (tr) { return tr.closest('table').id + ':' + tr.querySelector('td').textContent; }); };
var lit = steps(document.querySelectorAll('tr.hl'));
var want = steps(Array.from(document.querySelectorAll('tr[data-objects]')).filter(function (tr) { return tr.getAttribute('data-objects').split(' ').indexOf(key) >= 0; }));
var target = document.getElementById('violation');
document.body.setAttribute('data-result', JSON.stringify({ key: key, lit: lit, want: want, target: target ? target.textContent : null }));
</script>
</body>"#;
    let probed = dir.path().join("probed.html");
    std::fs::write(&probed, html.replace("</body>", probe)).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let o = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", probed.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&o.stdout);
    let result = dom
        .split("data-result=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| {
            panic!(
                "the probe did not run:\n{}\n{}",
                dom,
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let r: serde_json::Value = serde_json::from_str(&result).unwrap();
    let lit = r["lit"].as_array().unwrap();
    assert!(!lit.is_empty(), "clicking {} lit nothing: {r}", r["key"]);
    assert_eq!(
        r["lit"], r["want"],
        "lit rows differ from the rows that touch {}",
        r["key"]
    );
    let target = r["target"].as_str().expect("the #violation anchor exists");
    assert!(
        target.contains("violation"),
        "the anchor is not the violation: {target}"
    );
}
