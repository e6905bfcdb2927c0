//! Prints the MetalLB objects equivalent to a ConfigMap file (regenerates
//! `config/seed-crds.yaml`): `cargo run -p ferrolb-config --example convert_configmap -- FILE NS`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .ok_or("usage: convert_configmap FILE NAMESPACE")?;
    let namespace = args
        .next()
        .ok_or("usage: convert_configmap FILE NAMESPACE")?;
    let config = ferrolb_config::load(&std::fs::read_to_string(file)?)?;
    let conversion = ferrolb_config::metallb::convert(&config, &namespace);
    for line in &conversion.report {
        eprintln!("{line}");
    }
    print!("{}", conversion.yaml);
    Ok(())
}
