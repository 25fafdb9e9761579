//! Your own scenario, from text, on every era: the row of the matrix it makes.
//!
//! The scenario: a R/O pin (GUP-fast, longterm) of an anonymous page the process shares
//! with its child after fork, then the parent writes. Before the v5.19 fixes the write
//! COWs the page away from the pin (cow.c "R/O GUP-fast pin on R/O-mapped shared page").
//!
//! Run: `cargo run --release --example my_scenario`
//! Budget: 2,000 PCT (depth 3) executions per era, seed 0.

use cowbreak::explore::campaign::{self, CheckRequest};
use cowbreak::mm::{Arch, Era};

const SCENARIO: &str = "\
scenario my-ro-pin-after-fork
summary \"a R/O pin of a page shared with a child, then the parent writes\"
map buf private-anon pages=1 prot=rw write=1

thread parent:
    fork child
    pin-fast buf as p ro longterm
    write buf 2
    read-pin p
    unpin p
";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scenario = cowbreak::scenario::parse("my_scenario.rs", SCENARIO)?;
    let mut row = vec![scenario.name.clone()];
    for era in Era::ALL {
        let req = CheckRequest::new(scenario.clone(), era, Arch::X86, 2_000);
        let report = campaign::check(&req)?;
        row.push(match report.violations.first() {
            None => "ok".to_string(),
            Some(r) => format!("{} @{}", r.found.violation.kind, r.found.first_at_execution),
        });
    }
    let eras: Vec<&str> = Era::ALL.iter().map(|e| e.name()).collect();
    println!("| scenario | {} |", eras.join(" | "));
    println!("|---|{}", "---|".repeat(eras.len()));
    println!("| {} |", row.join(" | "));
    Ok(())
}
