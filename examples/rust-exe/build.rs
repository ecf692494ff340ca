//! Links libgreet from an OCI registry: `ocipkg link --cargo` gets the
//! package (cached after the first build) and prints the cargo: lines.
use std::{env, process::Command};

fn main() {
    let image = env::var("GREET_IMAGE")
        .unwrap_or_else(|_| "localhost:5000/examples/greet:1.0".to_string());
    let ocipkg = env::var("OCIPKG").unwrap_or_else(|_| "ocipkg".to_string());
    println!("cargo:rerun-if-env-changed=GREET_IMAGE");
    println!("cargo:rerun-if-env-changed=OCIPKG");
    let out = Command::new(&ocipkg)
        .args(["link", "--cargo", "--static", &image])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {ocipkg}: {e}"));
    if !out.status.success() {
        panic!("ocipkg link failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    print!("{}", String::from_utf8_lossy(&out.stdout));
}
