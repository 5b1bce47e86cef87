//! Writes the seed corpus (real tokens made with the harness's fixed keys,
//! real Cookie headers, anti-CSRF values) into `corpus/<target>/`:
//! `cargo run --example seed_corpus [-- DIR]`, in `fuzz/`.
fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    for (target, input) in tessera_testkit::fuzzing::seed_corpus() {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).expect("corpus directory");
        let name = format!("seed-{}", &tessera::sha256_hex(&input)[..16]);
        std::fs::write(d.join(name), &input).expect("writing a seed");
    }
}
