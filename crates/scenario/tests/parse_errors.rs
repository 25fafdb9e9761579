use cowbreak_mm::Era;
#[test]
fn probe() {
    for e in Era::ALL {
        let on: Vec<_> = e
            .policy()
            .iter()
            .filter(|&(_, on)| on)
            .map(|(n, _)| n)
            .collect();
        println!("{} | {} | {}", e.name(), e.kernels(), on.join(", "));
    }
}
