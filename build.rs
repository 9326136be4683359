//! Rebuilds when migrations change, so the embedded copies stay fresh.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
